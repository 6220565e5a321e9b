package recorder

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

// trackHarness drives one track's state directly, without a recording.
type trackHarness struct {
	st     *trackState
	frames []*frame
	now    time.Time
}

func newTrackHarness(c forwarding.Codec, window int, latency time.Duration) *trackHarness {
	tr := &Track{cfg: TrackConfig{Codec: c}, kind: codec.KindOf(c.MimeType)}
	return &trackHarness{st: newTrackState(tr, &Config{ReorderPackets: window, ReorderLatency: latency}), now: time.Unix(1000, 0)}
}

func (h *trackHarness) out(_ *trackState, f *frame) { h.frames = append(h.frames, f) }

func (h *trackHarness) push(p *rtp.Packet, after time.Duration) {
	h.now = h.now.Add(after)
	h.st.onPacket(&inPacket{hdr: p.Header, payload: p.Payload, arrival: h.now}, h.out)
}

func vp8Packets(t *testing.T, n int) ([][]*rtp.Packet, []mediaFrame) {
	frames := readIVFFrames(t, fixture(mediafixture.VP8))[:n]
	pz := rtp.NewPacketizer(200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewFixedSequencer(65500), 90000)
	var out [][]*rtp.Packet
	for i, f := range frames {
		pk := pz.Packetize(f.data, 0)
		for _, p := range pk {
			p.Timestamp = uint32(0xffff0000) + uint32(i*6000) // wraps during the test
		}
		out = append(out, pk)
	}
	return out, frames
}

func TestTrackReordersWithinWindow(t *testing.T) {
	pkts, frames := vp8Packets(t, 30)
	var all []*rtp.Packet
	for _, f := range pkts {
		all = append(all, f...)
	}
	// Shuffle within blocks of 8 packets: every packet arrives, late.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(all); i += 8 {
		blk := all[i:min(i+8, len(all))]
		rng.Shuffle(len(blk), func(a, b int) { blk[a], blk[b] = blk[b], blk[a] })
	}
	h := newTrackHarness(forwarding.Codec{MimeType: codec.MimeTypeVP8, ClockRate: 90000}, 64, time.Second)
	for _, p := range all {
		h.push(p, time.Millisecond)
	}
	h.st.flush(h.out)
	if len(h.frames) != len(frames) || h.st.lost != 0 || h.st.framesDropped != 0 {
		t.Fatalf("%d frames of %d, lost %d, dropped %d", len(h.frames), len(frames), h.st.lost, h.st.framesDropped)
	}
	for i, f := range h.frames {
		if !bytes.Equal(f.data, frames[i].data) {
			t.Fatalf("frame %d differs from the fixture", i)
		}
		// Timestamps unwrap across the 32-bit wrap.
		if want := int64(uint32(0xffff0000)) + int64(i*6000); f.ts != want {
			t.Fatalf("frame %d at %d, want %d", i, f.ts, want)
		}
	}
	if !h.frames[0].info.keyframe || h.frames[0].info.width != 320 || h.frames[0].info.height != 240 {
		t.Fatalf("first frame info %+v", h.frames[0].info)
	}
}

func TestTrackLossWaitsForKeyframe(t *testing.T) {
	pkts, frames := vp8Packets(t, 40) // keyframes at 0 and 15, 30
	h := newTrackHarness(forwarding.Codec{MimeType: codec.MimeTypeVP8, ClockRate: 90000}, 64, 100*time.Millisecond)
	lostFrame := 3
	if len(pkts[lostFrame]) != 1 || !frames[15].key || !frames[30].key {
		t.Fatal("fixture assumptions changed")
	}
	for i, f := range pkts {
		for _, p := range f {
			if i == lostFrame {
				continue
			}
			h.push(p, 10*time.Millisecond)
		}
	}
	h.st.flush(h.out)
	// Frames 0-2 and 15-39 are written; 4-14 refer to the lost frame.
	if want := 3 + 25; len(h.frames) != want {
		t.Fatalf("%d frames written, want %d", len(h.frames), want)
	}
	if h.frames[3].ts != h.frames[0].ts+15*6000 || !h.frames[3].info.keyframe {
		t.Fatalf("after the loss the track restarts at frame %d (key %v)", (h.frames[3].ts-h.frames[0].ts)/6000, h.frames[3].info.keyframe)
	}
	if h.st.lost != 1 || h.st.framesDropped != 11 {
		t.Fatalf("lost %d packets, dropped %d frames", h.st.lost, h.st.framesDropped)
	}
}

func TestReorderGivesUpAfterLatencyAndWindow(t *testing.T) {
	h := newTrackHarness(forwarding.Codec{MimeType: codec.MimeTypeOpus, ClockRate: 48000}, 8, 100*time.Millisecond)
	pkt := func(seq uint16) *rtp.Packet {
		return &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 7}, Payload: []byte{0xfc, byte(seq)}}
	}
	// The first packets are held for the latency, so that one reordered
	// before the first to arrive still makes it.
	h.push(pkt(1), 0)
	h.push(pkt(0), 0)
	if len(h.frames) != 0 {
		t.Fatalf("%d frames released during the start hold", len(h.frames))
	}
	h.st.expire(h.now.Add(100*time.Millisecond), h.out)
	if len(h.frames) != 2 || h.frames[0].ts != h.frames[1].ts-960 {
		t.Fatalf("after the start hold: %d frames", len(h.frames))
	}
	h.push(pkt(3), 100*time.Millisecond) // 2 is missing: 3 waits
	h.st.expire(h.now.Add(50*time.Millisecond), h.out)
	if len(h.frames) != 2 {
		t.Fatal("gave up before the latency")
	}
	h.st.expire(h.now.Add(100*time.Millisecond), h.out)
	if len(h.frames) != 3 || h.st.lost != 1 {
		t.Fatalf("after the latency: %d frames, lost %d", len(h.frames), h.st.lost)
	}
	h.push(pkt(2), 0) // too late now
	if h.st.reorder.late != 1 || len(h.frames) != 3 {
		t.Fatalf("late packet: late %d, frames %d", h.st.reorder.late, len(h.frames))
	}
	// A hole followed by more than the window: released without waiting.
	for seq := uint16(5); seq < 5+9; seq++ {
		h.push(pkt(seq), 0)
	}
	if len(h.frames) != 3+9 || h.st.lost != 2 {
		t.Fatalf("window overflow: %d frames, lost %d", len(h.frames), h.st.lost)
	}
	// Audio timestamps follow RTP, gaps included.
	if d := h.frames[3].ts - h.frames[2].ts; d != 2*960 {
		t.Fatalf("gap of %d ticks, want %d", d, 2*960)
	}
}

func TestH264ParameterSets(t *testing.T) {
	units := readH264Frames(t, fixture(mediafixture.H264))
	pz := rtp.NewPacketizer(1200, 102, 1, &codecs.H264Payloader{}, rtp.NewFixedSequencer(1), 90000)
	pk := pz.Packetize(units[0].data, 0)
	var payloads [][]byte
	for _, p := range pk {
		payloads = append(payloads, p.Payload)
	}
	data, err := depacketize(codec.H264, payloads)
	if err != nil {
		t.Fatal(err)
	}
	info := inspect(codec.H264, data)
	if !info.keyframe || info.width != 320 || info.height != 240 || len(info.config) < 8 || info.config[0] != 1 {
		t.Fatalf("IDR access unit: %+v", info)
	}
	// A 1080p SPS with cropping (1920x1088 coded) from a common encoder.
	sps := []byte{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58}
	if w, h, ok := parseSPS(sps); !ok || w != 1920 || h != 1080 {
		t.Fatalf("1080p SPS parsed as %dx%d (%v)", w, h, ok)
	}
}

func TestNameTemplate(t *testing.T) {
	vars := map[string]string{"room": "../etc", "publisher": "a/b", "stream": "..", "start": "20260101T000000Z"}
	if got := expandName(defaultNameTemplate, vars, 1); got != ".._etc/20260101T000000Z_a_b___" {
		t.Fatalf("expanded %q", got)
	}
	if got := expandName("{room}/{stream}", vars, 3); got != ".._etc/__-part3" {
		t.Fatalf("expanded part 3 as %q", got)
	}
	for _, bad := range []string{"/abs/{room}", "{room}/../x", "{nope}", "a//b", "x{room"} {
		if err := validateTemplate(bad); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
	if err := validateTemplate("{date}/{room}-{part}"); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Dir: t.TempDir(), NameTemplate: "{room}/../../x"}); err == nil || !strings.Contains(err.Error(), "..") {
		t.Fatalf("New with an escaping template: %v", err)
	}
}
