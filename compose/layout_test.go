package compose_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/compose"
)

func TestGrid(t *testing.T) {
	for _, c := range []struct {
		n          int
		cols, rows int
	}{{1, 1, 1}, {2, 2, 1}, {3, 2, 2}, {4, 2, 2}, {5, 3, 2}, {9, 3, 3}, {10, 4, 3}} {
		cells := compose.Grid(c.n, 1280, 720)
		if len(cells) != c.n {
			t.Fatalf("%d tiles: %d cells", c.n, len(cells))
		}
		w, h := 1280/c.cols&^1, 720/c.rows&^1
		for i, r := range cells {
			want := compose.Rect{X: (i % c.cols) * w, Y: (i / c.cols) * h, W: w, H: h}
			if r != want {
				t.Errorf("%d tiles, cell %d: %+v, want %+v", c.n, i, r, want)
			}
			if r.X+r.W > 1280 || r.Y+r.H > 720 {
				t.Errorf("%d tiles, cell %d: %+v leaves the canvas", c.n, i, r)
			}
		}
	}
	if cells := compose.Grid(0, 1280, 720); cells != nil {
		t.Errorf("no tiles: %v", cells)
	}
}

// TestPlan: a segment starts and ends exactly where a video does; a file
// without video never gets a tile; participants keep their first-publish
// order in the grid.
func TestPlan(t *testing.T) {
	s := time.Second
	m := &compose.Meeting{Duration: 10 * s, Participants: []compose.Participant{
		{Files: []compose.File{{Offset: 0, VideoOffset: s, Duration: 6 * s, Video: true}}},
		{Files: []compose.File{{Offset: 0, VideoOffset: 0, Duration: 10 * s, Video: true}}},
		{Files: []compose.File{{Offset: 3 * s, AudioOffset: 3 * s, Duration: 5 * s, Audio: true}}},
		{Files: []compose.File{{Offset: 4 * s, VideoOffset: 4 * s, Duration: 6 * s, Video: true}}},
	}}
	got := compose.Plan(m, 1280, 720)
	want := []struct {
		from, to time.Duration
		who      []int
	}{{0, s, []int{1}}, {s, 4 * s, []int{0, 1}}, {4 * s, 6 * s, []int{0, 1, 3}}, {6 * s, 10 * s, []int{1, 3}}}
	if len(got) != len(want) {
		t.Fatalf("plan %+v, want %d segments", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		var who []int
		for _, tile := range g.Tiles {
			who = append(who, tile.Participant)
		}
		if g.From != w.from || g.To != w.to || fmt.Sprint(who) != fmt.Sprint(w.who) {
			t.Errorf("segment %d: %v-%v %v, want %v-%v %v", i, g.From, g.To, who, w.from, w.to, w.who)
		}
		for k, tile := range g.Tiles {
			if cell := compose.Grid(len(g.Tiles), 1280, 720)[k]; tile.Cell != cell {
				t.Errorf("segment %d tile %d in %+v, want %+v", i, k, tile.Cell, cell)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := compose.Load(t.TempDir()); err == nil {
		t.Error("a directory without room manifest loaded")
	}
	if _, err := compose.Load("/nonexistent/room"); err == nil {
		t.Error("a missing path loaded")
	}
}

func TestRunWithoutFFmpeg(t *testing.T) {
	m := &compose.Meeting{Duration: time.Second, Participants: []compose.Participant{{Files: []compose.File{{Path: "x.webm", Duration: time.Second, Audio: true}}}}}
	err := compose.Run(t.Context(), m, compose.Options{Output: "out.mp4", FFmpeg: "/nonexistent/ffmpeg"})
	if err == nil || !errors.Is(err, compose.ErrNoFFmpeg) {
		t.Errorf("no ffmpeg: %v, want ErrNoFFmpeg", err)
	}
	if _, err := compose.Args(m, compose.Options{Output: "out.avi"}); err == nil {
		t.Error("an .avi output was accepted")
	}
}
