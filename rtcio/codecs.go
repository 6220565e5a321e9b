package rtcio

import (
	"strconv"
	"strings"

	"github.com/pion/webrtc/v4"
)

// CodecTrack is a TrackLocal that sends exactly one codec, such as pion's
// TrackLocalStaticRTP and TrackLocalStaticSample, or a forwarded track that
// carries its publisher's codec untouched. The transceiver that sends it
// offers only that codec and its RTX instead of every codec the media engine
// knows: a video m-line then lists two payload types instead of about
// twenty, so an offer (and the answer to it) grows by a few hundred bytes
// per track rather than by kilobytes, which is what lets a room of dozens
// of forwarded streams fit the signaling server's bounds.
type CodecTrack interface {
	webrtc.TrackLocal
	Codec() webrtc.RTPCodecCapability
}

// preferCodec limits t's offered codecs to the one track sends. Tracks that
// do not say their codec keep the media engine's list. A transceiver being
// reused first gets the full list back, so it can carry a different codec.
func (p *peer) preferCodec(t *webrtc.RTPTransceiver, track webrtc.TrackLocal) {
	ct, ok := track.(CodecTrack)
	if !ok || t.Sender() == nil {
		return
	}
	if err := t.SetCodecPreferences(nil); err != nil {
		p.log.Warn("rtcio: reset codec preferences", "track", track.ID(), "err", err)
		return
	}
	keep := codecsFor(ct.Codec(), t.Sender().GetParameters().Codecs)
	if len(keep) == 0 {
		// The media engine cannot send this codec at all; binding will
		// fail and say so. Offering everything changes nothing there.
		return
	}
	if err := t.SetCodecPreferences(keep); err != nil {
		p.log.Warn("rtcio: set codec preferences", "track", track.ID(), "codec", ct.Codec().MimeType, "err", err)
	}
}

// codecsFor picks, out of the codecs a transceiver could offer, those that
// carry want: the entries of its MIME type and clock rate (any, when want
// leaves it 0, as pion's own matching does) whose fmtp line
// equals want's (all entries of that type when none does, as for an H.264
// track whose fmtp the engine lists under several profiles), each followed
// by the RTX entry that points at it.
func codecsFor(want webrtc.RTPCodecCapability, all []webrtc.RTPCodecParameters) []webrtc.RTPCodecParameters {
	var same, exact []webrtc.RTPCodecParameters
	for _, c := range all {
		if !strings.EqualFold(c.MimeType, want.MimeType) || (want.ClockRate != 0 && c.ClockRate != want.ClockRate) {
			continue
		}
		same = append(same, c)
		if c.SDPFmtpLine == want.SDPFmtpLine {
			exact = append(exact, c)
		}
	}
	primary := exact
	if len(primary) == 0 {
		primary = same
	}
	out := make([]webrtc.RTPCodecParameters, 0, 2*len(primary))
	for _, c := range primary {
		out = append(out, c)
		if rtx, ok := rtxFor(c.PayloadType, all); ok {
			out = append(out, rtx)
		}
	}
	return out
}

// rtxFor finds the RTX entry whose apt names payload type pt.
func rtxFor(pt webrtc.PayloadType, all []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	apt := "apt=" + strconv.Itoa(int(pt))
	for _, c := range all {
		if !strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) {
			continue
		}
		for _, kv := range strings.Split(c.SDPFmtpLine, ";") {
			if strings.TrimSpace(kv) == apt {
				return c, true
			}
		}
	}
	return webrtc.RTPCodecParameters{}, false
}
