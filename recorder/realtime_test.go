package recorder

import (
	"context"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

// TestArrivalTimeAlignment plays the fixtures in real time without sender
// reports, video starting about half a second after audio: the recorder
// falls back to arrival times and still places video where it began.
func TestArrivalTimeAlignment(t *testing.T) {
	requireFFmpeg(t)
	newWriter := func(codec forwarding.Codec, pl rtp.Payloader, ssrc uint32) *rtpSampleWriter {
		pub, err := forwarding.NewPublication(context.Background(), forwarding.PublicationConfig{Codec: codec, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pub.Close() })
		return &rtpSampleWriter{pub: pub, clock: codec.ClockRate,
			pz: rtp.NewPacketizer(1200, codec.PayloadType, ssrc, pl, rtp.NewRandomSequencer(), codec.ClockRate)}
	}
	audio := newWriter(forwarding.Codec{MimeType: codec.MimeTypeOpus, ClockRate: 48000, PayloadType: 111}, &codecs.OpusPayloader{}, 1)
	video := newWriter(forwarding.Codec{MimeType: codec.MimeTypeVP8, ClockRate: 90000, PayloadType: 96},
		&codecs.VP8Payloader{EnablePictureID: true}, 2)

	r := newTestRecorder(t, Config{SyncWait: 2 * time.Second})
	rec, err := r.Start(t.Context(), testInfo())
	if err != nil {
		t.Fatal(err)
	}
	handles := map[*rtpSampleWriter]*forwarding.SinkHandle{}
	for _, w := range []*rtpSampleWriter{audio, video} {
		_, h, err := rec.Attach(w.pub, "t")
		if err != nil {
			t.Fatal(err)
		}
		handles[w] = h
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = mediafixture.PlayOgg(ctx, mediafixture.Path(mediafixture.Opus), audio)
	}()
	eventually(t, 5*time.Second, func() bool { return audio.fedTime() >= 500*time.Millisecond })
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = mediafixture.PlayIVF(ctx, mediafixture.Path(mediafixture.VP8), video)
	}()
	eventually(t, 5*time.Second, func() bool { return video.fedTime() >= time.Second })
	cancel()
	wg.Wait()
	for w, h := range handles {
		eventually(t, 5*time.Second, func() bool { return h.Stats().Delivered >= w.pub.Stats().PacketsIn })
		_ = w.pub.Close()
	}
	waitDone(t, rec)

	file := filepath.Join(r.Dir(), rec.Status().Files[0])
	vt, at := packetTimes(t, file, "v:0"), packetTimes(t, file, "a:0")
	if len(vt) == 0 || len(at) == 0 {
		t.Fatalf("file has %d video and %d audio packets", len(vt), len(at))
	}
	audio.mu.Lock()
	video.mu.Lock()
	want := video.first.Sub(audio.first).Seconds()
	audio.mu.Unlock()
	video.mu.Unlock()
	got := vt[0] - at[0]
	t.Logf("video started %.3fs after audio; in the file %.3fs", want, got)
	if math.Abs(got-want) > 0.050 {
		t.Fatalf("audio/video offset %.3fs in the file, %.3fs in reality", got, want)
	}
	if errs := ffmpegDecodeErrors(t, file); errs != "" {
		t.Logf("ffmpeg on the real-time file:\n%s", errs)
	}
}
