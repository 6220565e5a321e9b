package rtcio

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// An offer with a single-codec track on its transceiver lists only that
// codec and its RTX on the m-line, whether or not the track states its
// clock rate.
func TestPreferCodecTrimsOffer(t *testing.T) {
	api, err := LoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p := &peer{pc: pc, log: slog.New(slog.DiscardHandler)}
	for _, c := range []webrtc.RTPCodecCapability{
		{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		{MimeType: webrtc.MimeTypeVP8}, // clock rate left out, as pion allows
		{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
	} {
		track, err := webrtc.NewTrackLocalStaticRTP(c, "t-"+c.MimeType, "s")
		if err != nil {
			t.Fatal(err)
		}
		tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		p.preferCodec(tr, track)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	sections := strings.Split(offer.SDP, "\r\nm=")[1:]
	if len(sections) != 3 {
		t.Fatalf("offer has %d m-lines, want 3:\n%s", len(sections), offer.SDP)
	}
	want := []string{"VP8/90000,rtx/90000", "VP8/90000,rtx/90000", "opus/48000/2"}
	for i, sec := range sections {
		var got []string
		for _, line := range strings.Split(sec, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "a=rtpmap:"); ok {
				_, enc, _ := strings.Cut(rest, " ")
				got = append(got, enc)
			}
		}
		if strings.Join(got, ",") != want[i] {
			t.Errorf("m-line %d lists %v, want %s", i, got, want[i])
		}
	}
	if !strings.Contains(sections[0], "apt=") {
		t.Errorf("the video m-line has no RTX association:\n%s", sections[0])
	}
}
