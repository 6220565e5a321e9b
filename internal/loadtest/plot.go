package loadtest

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// SweepPoint is one subscriber count of a sweep: the gateway's result and,
// in baseline mode, the bare forwarder's from the same run.
type SweepPoint struct {
	Subscribers int     `json:"subscribers"`
	Gateway     *Result `json:"gateway"`
	Bare        *Result `json:"bare,omitempty"`
}

// Plot draws a sweep as a PNG: CPU per forwarded packet (left) and loss
// (right) against subscriber count, one line per target.
func Plot(path string, points []SweepPoint) error {
	cost := plot.New()
	cost.Title.Text = "server CPU per forwarded packet"
	cost.X.Label.Text = "subscribers"
	cost.Y.Label.Text = "us / packet"
	cost.Y.Min = 0
	loss := plot.New()
	loss.Title.Text = "loss (all subscribers)"
	loss.X.Label.Text = "subscribers"
	loss.Y.Label.Text = "% of packets"
	loss.Y.Min = 0

	series := []struct {
		name  string
		pick  func(SweepPoint) *Result
		color color.Color
	}{
		{"gateway", func(p SweepPoint) *Result { return p.Gateway }, color.RGBA{R: 200, G: 40, B: 40, A: 255}},
		{"bare pion", func(p SweepPoint) *Result { return p.Bare }, color.RGBA{R: 40, G: 80, B: 200, A: 255}},
	}
	for _, s := range series {
		var cpu, lost plotter.XYs
		for _, p := range points {
			r := s.pick(p)
			if r == nil {
				continue
			}
			cpu = append(cpu, plotter.XY{X: float64(p.Subscribers), Y: r.CPUPerPacket})
			lost = append(lost, plotter.XY{X: float64(p.Subscribers), Y: r.LossTotal})
		}
		if len(cpu) == 0 {
			continue
		}
		for _, pl := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{cost, cpu}, {loss, lost}} {
			line, points, err := plotter.NewLinePoints(pl.xys)
			if err != nil {
				return fmt.Errorf("loadtest: plot: %w", err)
			}
			line.Color, points.Color = s.color, s.color
			pl.p.Add(line, points)
			pl.p.Legend.Add(s.name, line, points)
		}
	}
	cost.Add(plotter.NewGrid())
	loss.Add(plotter.NewGrid())
	loss.Legend.Top = true
	cost.Legend.Top = true

	const w, h = 12 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{cost, loss}}, tiles, dc)
	cost.Draw(canvases[0][0])
	loss.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("loadtest: plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("loadtest: plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("loadtest: plot %s: %w", path, err)
	}
	return nil
}
