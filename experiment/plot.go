package experiment

import (
	"fmt"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Colours of the pictures: one per kind of moment, the same in every
// picture.
var (
	colFault    = color.RGBA{R: 0x20, G: 0x20, B: 0x20, A: 0xff}
	colOutage   = color.RGBA{R: 0xf4, G: 0xb6, B: 0xb0, A: 0xff}
	colFailed   = color.RGBA{R: 0xc0, G: 0x20, B: 0x20, A: 0xff}
	colDetected = color.RGBA{R: 0xe6, G: 0x8a, B: 0x00, A: 0xff}
	colFailover = color.RGBA{R: 0x7b, G: 0x3f, B: 0xa0, A: 0xff}
	colReplaced = color.RGBA{R: 0x1f, G: 0x6f, B: 0xc0, A: 0xff}
	colServed   = color.RGBA{R: 0x1a, G: 0x9a, B: 0x3a, A: 0xff}
	colHealed   = color.RGBA{R: 0x70, G: 0x70, B: 0x70, A: 0xff}
	colFenced   = color.RGBA{R: 0x8c, G: 0x56, B: 0x1e, A: 0xff}
	colDup      = color.RGBA{R: 0xff, G: 0x00, B: 0xb0, A: 0xff}
	colGrid     = color.RGBA{R: 0xe0, G: 0xe0, B: 0xe0, A: 0xff}
)

// WritePictures draws, for each fault of the report, a timeline of its
// trials and the distribution of its figures over them, as PNG and SVG
// files in dir. It returns the files written.
func WritePictures(r *Report, dir string) ([]string, error) {
	var files []string
	for _, s := range r.Summaries {
		var trials []Trial
		for _, t := range r.Trials {
			if t.Fault == s.Fault && t.Error == "" {
				trials = append(trials, t)
			}
		}
		if len(trials) == 0 {
			continue
		}
		tl, legend, h := timeline(r, s.Fault, trials)
		for _, ext := range []string{"png", "svg"} {
			name := filepath.Join(dir, fmt.Sprintf("%s-timeline.%s", s.Fault, ext))
			if err := save(tl, legend, 12*vg.Inch, h, 3.2*vg.Inch, name); err != nil {
				return files, fmt.Errorf("write %s: %w", name, err)
			}
			files = append(files, name)
		}
		dp, legend, h := distribution(r, s)
		if dp == nil {
			continue
		}
		for _, ext := range []string{"png", "svg"} {
			name := filepath.Join(dir, fmt.Sprintf("%s-distribution.%s", s.Fault, ext))
			if err := save(dp, legend, 9*vg.Inch, h, 1.9*vg.Inch, name); err != nil {
				return files, fmt.Errorf("write %s: %w", name, err)
			}
			files = append(files, name)
		}
	}
	return files, nil
}

// save writes the plot with its legend in a column of its own, right of
// the plot (so that it never covers a trial), as PNG (at 144 dpi) or SVG
// by the file's extension.
func save(p *plot.Plot, legend plot.Legend, w, h, legendWidth vg.Length, name string) error {
	var c vg.CanvasWriterTo
	switch filepath.Ext(name) {
	case ".png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(144), vgimg.UseBackgroundColor(color.White))}
	case ".svg":
		c = vgsvg.New(w, h)
	default:
		return fmt.Errorf("unknown picture format %q", filepath.Ext(name))
	}
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	legend.Draw(draw.Crop(dc, w-legendWidth+vg.Points(12), 0, 0, -vg.Points(24)))
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.TextStyle.Font.Size = vg.Points(10)
	l.Padding = vg.Points(3)
	return l
}

func subtitle(r *Report) string {
	backend := "real tenement"
	if r.Backend != "tenement" {
		backend = "SIMULATED tenement"
	}
	if r.Observe {
		backend = "observed fleet"
	}
	s := r.Settings
	return fmt.Sprintf("%s, %d servers, %d tenants; probe %s, dead after %d", backend, r.Servers, r.Tenants, s.ProbeInterval, s.DeadAfter)
}

func scatter(xys plotter.XYs, shape draw.GlyphDrawer, c color.Color, radius vg.Length) *plotter.Scatter {
	s, _ := plotter.NewScatter(xys)
	s.GlyphStyle = draw.GlyphStyle{Shape: shape, Color: c, Radius: radius}
	return s
}

func band(x0, x1, y float64, c color.Color, width vg.Length) *plotter.Line {
	l, _ := plotter.NewLine(plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}})
	l.LineStyle = draw.LineStyle{Color: c, Width: width}
	return l
}

// timeline draws one row per trial, time running from the fault: when
// some tenant was not served (a shaded band), each failed request, and
// the moments the fault was detected, failed over, replaced, served
// again, undone, the server back and its stale copies fenced.
func timeline(r *Report, f Fault, trials []Trial) (*plot.Plot, plot.Legend, vg.Length) {
	p := plot.New()
	legend := newLegend()
	p.Title.Text = fmt.Sprintf("%s — %d trials (%s)", f.Title(), len(trials), subtitle(r))
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = "seconds since the fault"
	grid := plotter.NewGrid()
	grid.Horizontal.Color, grid.Vertical.Color = colGrid, colGrid
	p.Add(grid)
	n := len(trials)
	labels := make([]string, n)
	pts := &timelinePoints{xmax: 1}
	for i, t := range trials {
		y := float64(n - 1 - i)
		labels[n-1-i] = fmt.Sprintf("trial %d", t.Trial)
		pts.addTrial(p, t, y)
	}
	p.NominalY(labels...)
	p.X.Min, p.X.Max = -0.4, pts.xmax*1.05+0.3
	p.Y.Min, p.Y.Max = -0.8, float64(n)-0.2
	p.Add(band(0, 0.0001, 0, colFault, 0)) // keeps x=0 in range
	vline, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: -0.6}, {X: 0, Y: float64(n) - 0.4}})
	vline.LineStyle = draw.LineStyle{Color: colFault, Width: 1.5, Dashes: []vg.Length{4, 3}}
	p.Add(vline)
	legend.Add("fault", vline)
	out := band(0, 1, 0, colOutage, 9)
	servedName := "every tenant served again (router)"
	if r.Data {
		servedName = "served again with its data"
		legend.Add("not served with its data", out)
	} else {
		legend.Add("some tenant not served", out)
	}
	layers := []struct {
		name  string
		xys   plotter.XYs
		shape draw.GlyphDrawer
		c     color.Color
		r     vg.Length
	}{
		{"failed request (row spread by tenant)", pts.failed, draw.CrossGlyph{}, colFailed, 2},
		{"detected dead (controller)", pts.detected, draw.PyramidGlyph{}, colDetected, 5},
		{"failover held back (partition)", pts.held, draw.PlusGlyph{}, colFault, 6},
		{"first instance placed elsewhere", pts.failover, draw.SquareGlyph{}, colFailover, 4},
		{"displaced instance runs (tenement's list)", pts.replaced, draw.BoxGlyph{}, colReplaced, 3},
		{servedName, pts.served, draw.CircleGlyph{}, colServed, 5.5},
		{"controller killed", pts.ckill, draw.CrossGlyph{}, colFault, 6},
		{"another controller took over", pts.cback, draw.RingGlyph{}, colFault, 6},
		{"fault undone", pts.healed, draw.RingGlyph{}, colHealed, 4.5},
		{"server back online (controller)", pts.back, draw.CircleGlyph{}, colHealed, 3.5},
		{"stale copy fenced", pts.fenced, draw.PlusGlyph{}, colFenced, 4},
		{"instance on two servers", pts.dups, draw.RingGlyph{}, colDup, 5},
	}
	for _, l := range layers {
		if len(l.xys) == 0 {
			continue
		}
		s := scatter(l.xys, l.shape, l.c, l.r)
		p.Add(s)
		legend.Add(l.name, s)
	}
	h := max(vg.Length(2.4)*vg.Inch+vg.Length(n)*0.32*vg.Inch, 4.2*vg.Inch)
	return p, legend, h
}

// timelinePoints are the marks of a timeline, by kind.
type timelinePoints struct {
	failed, detected, held, failover, replaced, served, healed, back, fenced, dups, ckill, cback plotter.XYs
	xmax                                                                                         float64
}

// addTrial adds the marks of one trial, drawn on row y, and its bands
// to p: when some tenant was not served, and copies on two servers.
func (pts *timelinePoints) addTrial(p *plot.Plot, t Trial, y float64) {
	end := 0.0
	if t.ServedAgain != nil {
		end = t.ServedAgain.D().Seconds()
	} else if t.Healed != nil {
		end = t.Healed.D().Seconds()
	}
	if end > 0 {
		p.Add(band(0, end, y, colOutage, 9))
	}
	for _, fr := range t.FailedReqs {
		// Spread over the row by tenant, so a row shows who failed.
		off := (float64(tenantIndex(t, fr.Tenant))/float64(max(len(t.Tenants)-1, 1)) - 0.5) * 0.5
		pts.failed = append(pts.failed, plotter.XY{X: fr.Sent.D().Seconds(), Y: y + off})
		pts.xmax = math.Max(pts.xmax, fr.Sent.D().Seconds())
	}
	add := func(xys *plotter.XYs, m *Millis) {
		if m != nil {
			*xys = append(*xys, plotter.XY{X: m.D().Seconds(), Y: y})
			pts.xmax = math.Max(pts.xmax, m.D().Seconds())
		}
	}
	add(&pts.detected, t.Detected)
	add(&pts.held, t.Held)
	add(&pts.failover, t.FailoverStarted)
	for _, ms := range t.ReplacedEach {
		add(&pts.replaced, &ms)
	}
	if t.ServedAgain != nil && t.ServedAgain.D() > 0 {
		add(&pts.served, t.ServedAgain)
	}
	add(&pts.healed, t.Healed)
	add(&pts.back, t.Back)
	add(&pts.ckill, t.ControllerKilled)
	add(&pts.cback, t.ControllerBack)
	for _, m := range t.Marks {
		if m.Kind == MarkFenced && t.Healed != nil && m.At >= *t.Healed {
			at := m.At
			add(&pts.fenced, &at)
		}
	}
	for _, d := range t.OnTwoServers {
		p.Add(band(d.First.D().Seconds(), math.Max(d.Last.D().Seconds(), d.First.D().Seconds()+0.05), y+0.3, colDup, 3))
		first := d.First
		add(&pts.dups, &first)
	}
}

func tenantIndex(t Trial, tenant string) int {
	for i, tf := range t.Tenants {
		if tf.Tenant == tenant {
			return i
		}
	}
	return 0
}

// distribution draws each timed figure over the trials: a box (quartiles,
// median) with every trial's value as a dot.
func distribution(r *Report, s Summary) (*plot.Plot, plot.Legend, vg.Length) {
	legend := newLegend()
	var figs []Figure
	for _, f := range s.Figures {
		if f.Unit == Seconds && f.N > 0 && f.Key != "on_two_servers_for" {
			figs = append(figs, f)
		}
	}
	if len(figs) == 0 {
		return nil, legend, 0
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s — %d trials: seconds since the fault", s.Fault.Title(), s.Trials)
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = fmt.Sprintf("seconds (%s)", subtitle(r))
	grid := plotter.NewGrid()
	grid.Horizontal.Color, grid.Vertical.Color = colGrid, colGrid
	p.Add(grid)
	colours := map[string]color.Color{"detected": colDetected, "failover_started": colFailover, "replaced": colReplaced,
		"served_again": colServed, "served_after_heal": colServed, "longest_gap": colFailed, "controller_back": colFault,
		"served_with_data": colServed, "lease_wait": colFailover, "writer_wait": colDetected, "restore": colReplaced, "lost_span": colFailed, "old_wrote_for": colDup,
		"controller_killed": colFault}
	labels := make([]string, len(figs))
	rng := rand.New(rand.NewPCG(1, 2))
	xmax := 0.0
	for i, f := range figs {
		y := float64(len(figs) - 1 - i)
		labels[len(figs)-1-i] = fmt.Sprintf("%s\np50 %s  p99 %s  max %s", strings.TrimSpace(f.Name), formatValue(f.P50, f.Unit), formatValue(f.P99, f.Unit), formatValue(f.Max, f.Unit))
		c := colours[f.Key]
		if c == nil {
			c = colHealed
		}
		if len(f.Values) >= 3 {
			b, err := plotter.NewBoxPlot(vg.Points(18), y, plotter.Values(f.Values))
			if err == nil {
				b.Horizontal = true
				b.BoxStyle.Color = c
				b.MedianStyle.Color = c
				b.MedianStyle.Width = 2
				b.WhiskerStyle.Color = c
				b.GlyphStyle.Radius = 0
				p.Add(b)
			}
		}
		var pts plotter.XYs
		for _, v := range f.Values {
			pts = append(pts, plotter.XY{X: v, Y: y + (rng.Float64()-0.5)*0.3})
			xmax = math.Max(xmax, v)
		}
		dots := scatter(pts, draw.CircleGlyph{}, withAlpha(c, 0xb0), 3.5)
		p.Add(dots)
		p50 := scatter(plotter.XYs{{X: f.P50, Y: y - 0.28}}, draw.PyramidGlyph{}, colHealed, 4)
		p99 := scatter(plotter.XYs{{X: f.P99, Y: y - 0.28}}, draw.PyramidGlyph{}, colFault, 4)
		p.Add(p50, p99)
		if i == 0 {
			legend.Add("one trial", dots)
			legend.Add("p50", p50)
			legend.Add("p99 (nearest rank)", p99)
			if len(f.Values) >= 3 {
				legend.Add("quartiles and median")
			}
		}
	}
	p.NominalY(labels...)
	p.X.Min, p.X.Max = 0, xmax*1.08+0.05
	p.Y.Min, p.Y.Max = -0.6, float64(len(figs))-0.4
	p.Y.Tick.Label.Font.Size = vg.Points(9)
	h := vg.Length(1.6)*vg.Inch + vg.Length(len(figs))*0.75*vg.Inch
	return p, legend, h
}

func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: a}
}
