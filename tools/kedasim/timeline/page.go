package timeline

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"
)

//go:embed page.html.tmpl
var pageTemplate string

// Colours of the series in a panel, in order; red is kept for faults and
// green (translucent) for the expected band.
var palette = []string{"#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"}

const (
	width       = 960.0
	panelHeight = 210.0
	left        = 56.0
	right       = 16.0
	top         = 26.0
	bottom      = 34.0
	faultColour = "#d62728"
)

type pageData struct {
	Title  string
	End    string
	Panels []panelView
	Marks  []Mark
	Table  string
}

type panelView struct {
	Name         string
	Width, H     float64
	Left, Right  float64
	Top, Bottom  float64
	XTicks       []tick
	YTicks       []tick
	Bands        []bandView
	Series       []seriesView
	Marks        []markView
	ShowMarkText bool
}

type tick struct {
	Pos   float64
	Label string
}

type bandView struct {
	X, Y, W, H float64
	Text       string
}

type seriesView struct {
	Name, Colour, D string
	Stroke          float64
	Last, Max       string
}

type markView struct {
	X, TextY, TextX float64
	Text, Colour    string
	Fault           bool
	Anchor          string
	StrokeWidth     float64
}

// Page is the timeline as a self-contained HTML page.
func (tl *Timeline) Page() string {
	d := tl.snapshot()
	end := time.Second
	if n := len(d.Samples); n > 0 {
		end = max(end, d.Samples[n-1].At)
	}
	for _, m := range d.Marks {
		end = max(end, m.At)
	}
	xs := func(at time.Duration) float64 { return left + (width-left-right)*at.Seconds()/end.Seconds() }
	xTicks := timeTicks(end, xs)

	var panels []string
	for _, s := range d.Series {
		if !slices.Contains(panels, s.Panel) {
			panels = append(panels, s.Panel)
		}
	}
	pd := pageData{Title: d.Title, End: fmt.Sprintf("%.0f s", end.Seconds()), Marks: d.Marks, Table: tl.Table()}
	for pi, name := range panels {
		var idx []int
		for i, s := range d.Series {
			if s.Panel == name {
				idx = append(idx, i)
			}
		}
		var bands []Band
		for _, b := range d.Bands {
			if b.Panel == name {
				bands = append(bands, b)
			}
		}
		maxV := 1.0
		for _, s := range d.Samples {
			for _, i := range idx {
				if v := s.Values[i]; !math.IsNaN(v) {
					maxV = max(maxV, v)
				}
			}
		}
		for _, b := range bands {
			maxV = max(maxV, b.Hi)
		}
		step := niceStep(maxV / 5)
		yMax := math.Ceil(maxV*1.05/step) * step
		ys := func(v float64) float64 { return panelHeight - bottom - (panelHeight-top-bottom)*v/yMax }
		p := panelView{Name: name, Width: width, H: panelHeight, Left: left, Right: width - right,
			Top: top, Bottom: panelHeight - bottom, XTicks: xTicks, ShowMarkText: pi == 0}
		for v := 0.0; v <= yMax+step/2; v += step {
			p.YTicks = append(p.YTicks, tick{Pos: ys(v), Label: trimFloat(v)})
		}
		for i, b := range bands {
			to := end
			if i+1 < len(bands) {
				to = bands[i+1].From
			}
			// A count band of one value (lo = hi) is a strip a quarter
			// count wide on each side, so it shows.
			y0, y1 := ys(b.Hi+0.25), ys(max(b.Lo-0.25, 0))
			p.Bands = append(p.Bands, bandView{X: xs(b.From), Y: y0, W: xs(to) - xs(b.From), H: y1 - y0, Text: b.Text})
		}
		for k, i := range idx {
			s := seriesView{Name: d.Series[i].Name, Colour: palette[k%len(palette)],
				// Drawn in order, each thinner than the one before, so a
				// series equal to another still shows at its edges.
				Stroke: 2 + 2*float64(len(idx)-1-k), D: stepPath(d.Samples, i, xs, ys)}
			last, peak := math.NaN(), math.NaN()
			for _, smp := range d.Samples {
				if v := smp.Values[i]; !math.IsNaN(v) {
					last = v
					if math.IsNaN(peak) || v > peak {
						peak = v
					}
				}
			}
			s.Last, s.Max = trimFloat(last), trimFloat(peak)
			p.Series = append(p.Series, s)
		}
		for mi, m := range d.Marks {
			mv := markView{X: xs(m.At), Text: m.Text, Colour: "#888", StrokeWidth: 1, TextY: 10 + 11*float64(mi%2), Fault: m.Fault}
			if m.Fault {
				mv.Colour, mv.StrokeWidth = faultColour, 2 // and its label red
			}
			mv.TextX, mv.Anchor = mv.X+3, "start"
			if mv.X > width*0.8 {
				mv.TextX, mv.Anchor = mv.X-3, "end"
			}
			p.Marks = append(p.Marks, mv)
		}
		pd.Panels = append(pd.Panels, p)
	}
	t := template.Must(template.New("page").Funcs(template.FuncMap{
		"f1":  func(v float64) string { return fmt.Sprintf("%.1f", v) },
		"add": func(a, b float64) float64 { return a + b },
		"sub": func(a, b float64) float64 { return a - b },
	}).Parse(pageTemplate))
	var b bytes.Buffer
	if err := t.Execute(&b, pd); err != nil {
		panic(err) // the template is ours and its data always fit it
	}
	return b.String()
}

// stepPath draws series i as steps: a value holds until the next sample.
// A NaN (no value) breaks the line.
func stepPath(samples []Sample, i int, xs func(time.Duration) float64, ys func(float64) float64) string {
	var b strings.Builder
	prev := math.NaN()
	for _, s := range samples {
		v := s.Values[i]
		switch {
		case math.IsNaN(v):
		case math.IsNaN(prev):
			fmt.Fprintf(&b, "M%.1f %.1f", xs(s.At), ys(v))
		default:
			fmt.Fprintf(&b, "H%.1fV%.1f", xs(s.At), ys(v))
		}
		prev = v
	}
	return b.String()
}

// timeTicks are seconds at a round step, about eight of them.
func timeTicks(end time.Duration, xs func(time.Duration) float64) []tick {
	step := 5.0
	for _, s := range []float64{5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600} {
		step = s
		if end.Seconds()/s <= 10 {
			break
		}
	}
	var ticks []tick
	for v := 0.0; v <= end.Seconds()+1e-9; v += step {
		ticks = append(ticks, tick{Pos: xs(time.Duration(v * float64(time.Second))), Label: fmt.Sprintf("%.0f s", v)})
	}
	return ticks
}

// niceStep is the smallest 1, 2 or 5 × 10^k at least raw (and at least 1:
// the charts count things).
func niceStep(raw float64) float64 {
	if raw <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
