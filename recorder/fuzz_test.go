package recorder

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

var fuzzCodecs = []forwarding.Codec{
	{MimeType: codec.MimeTypeVP8, ClockRate: 90000},
	{MimeType: codec.MimeTypeVP9, ClockRate: 90000},
	{MimeType: codec.MimeTypeAV1, ClockRate: 90000},
	{MimeType: codec.MimeTypeH264, ClockRate: 90000},
	{MimeType: codec.MimeTypeOpus, ClockRate: 48000},
}

// fuzzInput encodes packets as the fuzz target reads them: a codec byte,
// then per packet a delay byte (milliseconds since the previous packet), a
// 2-byte length and the marshalled packet.
func fuzzInput(codec byte, pkts []*rtp.Packet, delays []byte) []byte {
	b := []byte{codec}
	for i, p := range pkts {
		raw, err := p.Marshal()
		if err != nil {
			panic(err)
		}
		b = append(b, delays[i%len(delays)])
		b = binary.BigEndian.AppendUint16(b, uint16(len(raw)))
		b = append(b, raw...)
	}
	return b
}

// seedPackets packetizes a few frames of a fixture.
func seedPackets(t testing.TB, payloader rtp.Payloader, frames []mediaFrame, n int, mtu uint16) []*rtp.Packet {
	pz := rtp.NewPacketizer(mtu, 96, 5, payloader, rtp.NewFixedSequencer(65530), 90000)
	var out []*rtp.Packet
	for i, f := range frames[:min(n, len(frames))] {
		for _, p := range pz.Packetize(f.data, 0) {
			p.Timestamp = uint32(i * 6000)
			out = append(out, p)
		}
	}
	return out
}

// FuzzTrackPackets feeds hostile RTP through a track's reordering, frame
// assembly, depacketization and bitstream parsing: nothing may panic, and
// the reorder buffer's bookkeeping must stay consistent.
func FuzzTrackPackets(f *testing.F) {
	vp8 := seedPackets(f, &codecs.VP8Payloader{EnablePictureID: true}, readIVFFrames(f, fixture(mediafixture.VP8)), 3, 300)
	h264 := seedPackets(f, &codecs.H264Payloader{}, readH264Frames(f, fixture(mediafixture.H264)), 3, 300)
	vp9 := seedPackets(f, &codecs.VP9Payloader{}, readIVFFrames(f, mediafixture.Path("vp9.ivf")), 2, 300)
	av1 := seedPackets(f, &codecs.AV1Payloader{}, readIVFFrames(f, mediafixture.Path("av1.ivf")), 2, 300)
	opus := seedPackets(f, &codecs.OpusPayloader{}, readOpusFrames(f, fixture(mediafixture.Opus)), 4, 1200)
	f.Add(fuzzInput(0, vp8, []byte{0}))
	f.Add(fuzzInput(1, vp9, []byte{1}))
	f.Add(fuzzInput(2, av1, []byte{0, 5}))
	f.Add(fuzzInput(3, h264, []byte{0}))
	f.Add(fuzzInput(4, opus, []byte{20}))
	// Reordered, duplicated and lost packets.
	mixed := []*rtp.Packet{vp8[2], vp8[0], vp8[0], vp8[3], vp8[1], vp8[len(vp8)-1]}
	f.Add(fuzzInput(0, mixed, []byte{0, 250}))
	f.Add(fuzzInput(3, []*rtp.Packet{h264[1], h264[0], h264[3]}, []byte{200}))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		c := fuzzCodecs[int(data[0])%len(fuzzCodecs)]
		cfg := &Config{ReorderPackets: 16, ReorderLatency: 100 * time.Millisecond}
		tr := &Track{cfg: TrackConfig{Codec: c}, kind: codec.KindOf(c.MimeType)}
		st := newTrackState(tr, cfg)
		now := time.Unix(0, 0)
		frames, packets := 0, 0
		out := func(_ *trackState, fr *frame) {
			frames++
			if len(fr.data) == 0 {
				t.Fatal("empty frame")
			}
		}
		data = data[1:]
		for len(data) >= 3 {
			now = now.Add(time.Duration(data[0]) * time.Millisecond)
			n := int(binary.BigEndian.Uint16(data[1:]))
			data = data[3:]
			if n > len(data) {
				n = len(data)
			}
			var p rtp.Packet
			raw := data[:n]
			data = data[n:]
			if err := p.Unmarshal(raw); err != nil {
				continue
			}
			packets++
			st.onPacket(&inPacket{hdr: p.Header, payload: p.Payload, arrival: now}, out)
			st.expire(now, out)
			checkReorder(t, st.reorder)
		}
		st.flush(out)
		checkReorder(t, st.reorder)
		if frames > packets {
			t.Fatalf("%d frames from %d packets", frames, packets)
		}
	})
}

func checkReorder(t *testing.T, b *reorderBuffer) {
	t.Helper()
	n := 0
	for _, p := range b.slots {
		if p != nil {
			n++
			if p.ext < b.next || p.ext > b.highest {
				t.Fatalf("buffered packet %d outside [%d, %d]", p.ext, b.next, b.highest)
			}
		}
	}
	if n != b.count {
		t.Fatalf("reorder buffer counts %d packets, holds %d", b.count, n)
	}
}

// FuzzInspect parses hostile frames as every codec's bitstream.
func FuzzInspect(f *testing.F) {
	for _, fr := range readIVFFrames(f, fixture(mediafixture.VP8))[:2] {
		f.Add(byte(codec.VP8), fr.data)
	}
	f.Add(byte(codec.VP9), readIVFFrames(f, mediafixture.Path("vp9.ivf"))[0].data)
	f.Add(byte(codec.AV1), readIVFFrames(f, mediafixture.Path("av1.ivf"))[0].data)
	idr, err := depacketize(codec.H264, [][]byte{readH264Frames(f, fixture(mediafixture.H264))[0].data[4:]})
	if err == nil {
		f.Add(byte(codec.H264), idr)
	}
	f.Fuzz(func(t *testing.T, k byte, frame []byte) {
		info := inspect(codec.Kind(k%6), frame)
		if info.width < 0 || info.height < 0 || info.width > 1<<16 || info.height > 1<<16 {
			t.Fatalf("size %dx%d", info.width, info.height)
		}
	})
}
