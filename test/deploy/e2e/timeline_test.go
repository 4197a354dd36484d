//go:build e2e

package e2e

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// timeline records a scenario's numbers over time (replicas, queue depth,
// load) and writes them as a table and as an SVG page under bin/e2e/.
type timeline struct {
	title  string
	series []string // column names, in order
	start  time.Time

	mu      sync.Mutex
	samples []sample
	marks   []mark
}

type sample struct {
	at     time.Duration
	values []float64
}

type mark struct {
	at   time.Duration
	text string
}

func newTimeline(title string, series ...string) *timeline {
	return &timeline{title: title, series: series, start: time.Now()}
}

// add records one sample; values follow the series order.
func (tl *timeline) add(values ...float64) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.samples = append(tl.samples, sample{at: time.Since(tl.start), values: values})
}

// mark notes an event (load started, load stopped) at the current time.
func (tl *timeline) mark(text string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.marks = append(tl.marks, mark{at: time.Since(tl.start), text: text})
}

// table renders the samples whose values changed from the previous one,
// with the marks in between.
func (tl *timeline) table() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%8s", tl.title, "t")
	for _, s := range tl.series {
		fmt.Fprintf(&b, " %12s", s)
	}
	b.WriteString("\n")
	m := 0
	var prev []float64
	for i, s := range tl.samples {
		for ; m < len(tl.marks) && tl.marks[m].at <= s.at; m++ {
			fmt.Fprintf(&b, "%7.0fs  -- %s\n", tl.marks[m].at.Seconds(), tl.marks[m].text)
		}
		if i > 0 && i < len(tl.samples)-1 && equal(prev, s.values) {
			continue
		}
		prev = s.values
		fmt.Fprintf(&b, "%7.0fs", s.at.Seconds())
		for _, v := range s.values {
			if math.IsNaN(v) {
				fmt.Fprintf(&b, " %12s", "-") // no value (e.g. no series yet)
				continue
			}
			fmt.Fprintf(&b, " %12g", v)
		}
		b.WriteString("\n")
	}
	for ; m < len(tl.marks); m++ {
		fmt.Fprintf(&b, "%7.0fs  -- %s\n", tl.marks[m].at.Seconds(), tl.marks[m].text)
	}
	return b.String()
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

// save writes the table to the test log and the page to dir/timeline.html.
func (tl *timeline) save(t *testing.T, dir string) {
	t.Helper()
	t.Log("\n" + tl.table())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Error(err)
		return
	}
	path := filepath.Join(dir, "timeline.html")
	if err := os.WriteFile(path, []byte(tl.page()), 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("timeline: %s", path)
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}

// page is a self-contained HTML page: one SVG step chart per series on a
// shared time axis, the marks as vertical lines, and the table.
func (tl *timeline) page() string {
	tl.mu.Lock()
	samples, marks := tl.samples, tl.marks
	tl.mu.Unlock()
	const w, h, pad = 900.0, 160.0, 40.0
	var end time.Duration
	if n := len(samples); n > 0 {
		end = samples[n-1].at
	}
	if end <= 0 {
		end = time.Second
	}
	x := func(d time.Duration) float64 { return pad + (w-2*pad)*d.Seconds()/end.Seconds() }
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><meta charset=utf-8><title>%s</title>\n<body style=\"font-family:sans-serif\">\n<h1>%s</h1>\n",
		html.EscapeString(tl.title), html.EscapeString(tl.title))
	for i, name := range tl.series {
		maxV := 1.0
		for _, s := range samples {
			if !math.IsNaN(s.values[i]) {
				maxV = max(maxV, s.values[i])
			}
		}
		y := func(v float64) float64 {
			if math.IsNaN(v) {
				v = 0
			}
			return h - pad/2 - (h-pad)*v/maxV
		}
		fmt.Fprintf(&b, "<h3>%s (max %g)</h3>\n<svg width=%g height=%g style=\"border:1px solid #ccc\">\n", html.EscapeString(name), maxV, w, h)
		for _, m := range marks {
			fmt.Fprintf(&b, "<line x1=%.1f x2=%.1f y1=0 y2=%g stroke=#999 stroke-dasharray=4/><text x=%.1f y=12 font-size=10>%s</text>\n",
				x(m.at), x(m.at), h, x(m.at)+2, html.EscapeString(m.text))
		}
		var pts []string
		for j, s := range samples {
			if j > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.at), y(samples[j-1].values[i])))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.at), y(s.values[i])))
		}
		fmt.Fprintf(&b, "<polyline fill=none stroke=%q stroke-width=2 points=%q/>\n", palette[i%len(palette)], strings.Join(pts, " "))
		fmt.Fprintf(&b, "<text x=2 y=%.1f font-size=10>%g</text><text x=2 y=%.1f font-size=10>0</text>", y(maxV)+10, maxV, y(0))
		fmt.Fprintf(&b, "<text x=%.1f y=%.1f font-size=10 text-anchor=end>%.0fs</text>\n</svg>\n", w-pad, h-2, end.Seconds())
	}
	fmt.Fprintf(&b, "<pre>%s</pre>\n</body>\n", html.EscapeString(tl.table()))
	return b.String()
}

// max is the largest value series i took.
func (tl *timeline) max(i int) float64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	m := 0.0
	for _, s := range tl.samples {
		if !math.IsNaN(s.values[i]) {
			m = max(m, s.values[i])
		}
	}
	return m
}
