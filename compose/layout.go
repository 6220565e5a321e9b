package compose

import (
	"math"
	"slices"
	"time"
)

// Rect is a tile's place on the canvas, in pixels.
type Rect struct{ X, Y, W, H int }

// Segment is a stretch of the meeting during which the same videos are on
// screen, in the same places.
type Segment struct {
	From, To time.Duration
	Tiles    []Tile
}

// Tile puts one file's video in a cell of the grid.
type Tile struct {
	Participant int // index in Meeting.Participants
	File        int // index in that participant's Files
	Cell        Rect
}

// Grid divides a w x h canvas into cells for n tiles: as many columns as
// the square root of n rounded up, as many rows as needed, filled left to
// right and top to bottom. Cell sizes are even, as 4:2:0 video needs.
func Grid(n, w, h int) []Rect {
	if n <= 0 {
		return nil
	}
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	rows := (n + cols - 1) / cols
	cw, ch := even(w/cols), even(h/rows)
	cells := make([]Rect, n)
	for i := range cells {
		cells[i] = Rect{X: (i % cols) * cw, Y: (i / cols) * ch, W: cw, H: ch}
	}
	return cells
}

func even(v int) int { return v &^ 1 }

// Plan lays the meeting out on a w x h canvas: a new segment starts
// whenever a video starts (its first frame) or ends, and in each segment the participants
// showing video share the grid in the order they first published.
func Plan(m *Meeting, w, h int) []Segment {
	cuts := []time.Duration{0, m.Duration}
	for _, p := range m.Participants {
		for _, f := range p.Files {
			if f.Video {
				cuts = append(cuts, clamp(f.VideoOffset, m.Duration), clamp(f.End(), m.Duration))
			}
		}
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	var segs []Segment
	for i := 0; i+1 < len(cuts); i++ {
		from, to := cuts[i], cuts[i+1]
		var on []Tile
		for pi, p := range m.Participants {
			for fi, f := range p.Files {
				if f.Video && f.VideoOffset <= from && f.End() >= to {
					on = append(on, Tile{Participant: pi, File: fi})
					break
				}
			}
		}
		for k, cell := range Grid(len(on), w, h) {
			on[k].Cell = cell
		}
		if n := len(segs); n > 0 && sameTiles(segs[n-1].Tiles, on) {
			segs[n-1].To = to
			continue
		}
		segs = append(segs, Segment{From: from, To: to, Tiles: on})
	}
	return segs
}

func clamp(d, limit time.Duration) time.Duration { return min(max(d, 0), limit) }

func sameTiles(a, b []Tile) bool { return slices.Equal(a, b) }
