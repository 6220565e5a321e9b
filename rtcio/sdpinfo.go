package rtcio

import (
	"strings"

	"github.com/pion/sdp/v3"
)

// RemoteKinds counts, per kind ("audio", "video"), the m-lines of this
// peer's current remote description that send media of MediaStream msid
// (by their a=msid stream id). It tells how many tracks of each kind a
// peer's SDP announces for one stream, which the received tracks alone
// cannot (pion announces a track only with its first packet). Nil when
// the peer or its remote description is gone.
func (h *PeerHandle) RemoteKinds(msid string) map[string]int {
	p := h.get()
	if p == nil {
		return nil
	}
	d := p.pc.RemoteDescription()
	if d == nil {
		return nil
	}
	parsed, err := parseSDP(d)
	if err != nil {
		return nil
	}
	sending := remoteSendingMids(d)
	out := make(map[string]int)
	for _, m := range parsed.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		if !sending[mid] {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key != "msid" {
				continue
			}
			if stream, _, _ := strings.Cut(a.Value, " "); stream == msid {
				out[m.MediaName.Media]++
				break
			}
		}
	}
	return out
}
