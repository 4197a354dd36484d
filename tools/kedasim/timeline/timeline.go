// Package timeline records a scaling run's numbers over time (replicas,
// the HPA's reads, the load, queue depth) with its events and the counts
// its settings promise, and draws them as one self-contained HTML page:
// panels of step charts on one time axis, the expected band behind the
// replicas, load and fault markers, and the table of every change. The
// e2e scenarios and `make preview -html` write it; the page keeps the
// chart contract of pkg/testutil/browsertest (each chart an <svg
// role="img">, each series a shape with data-series and an opaque colour),
// and a test renders it in headless Chromium.
//
// Hand-drawn SVG: a chart library would need a script at view time, and the
// page must open from a file with no network.
package timeline

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Series is one column of numbers; series with the same Panel share a chart.
type Series struct {
	Name  string `json:"name"`
	Panel string `json:"panel"`
}

// Sample is the values of every series at one time.
type Sample struct {
	At     time.Duration `json:"at"`
	Values []float64     `json:"values"` // NaN: no value (e.g. no metric read yet)
}

// Mark is an event at one time: load started or stopped, a fault.
type Mark struct {
	At    time.Duration `json:"at"`
	Text  string        `json:"text"`
	Fault bool          `json:"fault,omitempty"`
}

// Band is what a panel's counts should be from From on (until the panel's
// next band, or the end): the band the settings promise, drawn behind.
type Band struct {
	Panel string        `json:"panel"`
	From  time.Duration `json:"from"`
	Lo    float64       `json:"lo"`
	Hi    float64       `json:"hi"`
	Text  string        `json:"text"`
}

// Timeline is safe for one writer goroutine and readers.
type Timeline struct {
	mu    sync.Mutex
	start time.Time
	data  data
}

// data is what Save writes as timeline.json and Load reads back.
type data struct {
	Title   string   `json:"title"`
	Series  []Series `json:"series"`
	Samples []Sample `json:"samples"`
	Marks   []Mark   `json:"marks"`
	Bands   []Band   `json:"bands"`
}

// New starts a timeline now.
func New(title string, series ...Series) *Timeline {
	return &Timeline{start: time.Now(), data: data{Title: title, Series: series}}
}

// Title is the timeline's title.
func (tl *Timeline) Title() string { return tl.data.Title }

// Add records one sample now; values follow the series order.
func (tl *Timeline) Add(values ...float64) { tl.AddAt(time.Since(tl.start), values...) }

// AddAt records one sample at a given time from the start.
func (tl *Timeline) AddAt(at time.Duration, values ...float64) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if len(values) != len(tl.data.Series) {
		panic(fmt.Sprintf("timeline %q: %d values for %d series", tl.data.Title, len(values), len(tl.data.Series)))
	}
	tl.data.Samples = append(tl.data.Samples, Sample{At: at, Values: append([]float64(nil), values...)})
}

// Mark notes an event now.
func (tl *Timeline) Mark(text string) { tl.MarkAt(time.Since(tl.start), text, false) }

// Fault notes a fault's start or end now (drawn in red).
func (tl *Timeline) Fault(text string) { tl.MarkAt(time.Since(tl.start), text, true) }

// MarkAt notes an event at a given time.
func (tl *Timeline) MarkAt(at time.Duration, text string, fault bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.data.Marks = append(tl.data.Marks, Mark{At: at, Text: text, Fault: fault})
}

// Expect says the panel's counts should be within [lo, hi] from now on.
func (tl *Timeline) Expect(panel string, lo, hi float64, text string) {
	tl.ExpectAt(time.Since(tl.start), panel, lo, hi, text)
}

// ExpectAt is Expect at a given time.
func (tl *Timeline) ExpectAt(at time.Duration, panel string, lo, hi float64, text string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.data.Bands = append(tl.data.Bands, Band{Panel: panel, From: at, Lo: lo, Hi: hi, Text: text})
}

// Max is the largest value series i took (0 when it took none).
func (tl *Timeline) Max(i int) float64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	m := 0.0
	for _, s := range tl.data.Samples {
		if !math.IsNaN(s.Values[i]) {
			m = max(m, s.Values[i])
		}
	}
	return m
}

// snapshot copies the data under the lock.
func (tl *Timeline) snapshot() data {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	d := tl.data
	d.Samples = append([]Sample(nil), d.Samples...)
	d.Marks = append([]Mark(nil), d.Marks...)
	d.Bands = append([]Band(nil), d.Bands...)
	return d
}

// Table is the samples whose values changed from the previous one, with
// the marks in between, as text.
func (tl *Timeline) Table() string {
	d := tl.snapshot()
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%8s", d.Title, "t")
	for _, s := range d.Series {
		fmt.Fprintf(&b, " %12s", s.Name)
	}
	b.WriteString("\n")
	m := 0
	var prev []float64
	for i, s := range d.Samples {
		for ; m < len(d.Marks) && d.Marks[m].At <= s.At; m++ {
			fmt.Fprintf(&b, "%7.0fs  -- %s\n", d.Marks[m].At.Seconds(), d.Marks[m].Text)
		}
		if i > 0 && i < len(d.Samples)-1 && equal(prev, s.Values) {
			continue
		}
		prev = s.Values
		fmt.Fprintf(&b, "%7.0fs", s.At.Seconds())
		for _, v := range s.Values {
			if math.IsNaN(v) {
				fmt.Fprintf(&b, " %12s", "-")
				continue
			}
			fmt.Fprintf(&b, " %12g", v)
		}
		b.WriteString("\n")
	}
	for ; m < len(d.Marks); m++ {
		fmt.Fprintf(&b, "%7.0fs  -- %s\n", d.Marks[m].At.Seconds(), d.Marks[m].Text)
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

// Save writes dir/timeline.html (the page) and dir/timeline.json (the
// numbers, for Load) and returns the page's path.
func (tl *Timeline) Save(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	raw, err := json.MarshalIndent(jsonData(tl.snapshot()), "", " ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "timeline.json"), raw, 0o644); err != nil {
		return "", err
	}
	page := filepath.Join(dir, "timeline.html")
	return page, tl.WritePage(page)
}

// WritePage writes the page alone to path.
func (tl *Timeline) WritePage(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(tl.Page()), 0o644)
}

// Load reads a timeline.json that Save wrote.
func Load(path string) (*Timeline, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d data
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range d.Samples {
		for i, v := range s.Values {
			if v == noValue {
				s.Values[i] = math.NaN()
			}
		}
		if len(s.Values) != len(d.Series) {
			return nil, fmt.Errorf("%s: a sample at %s has %d values for %d series", path, s.At, len(s.Values), len(d.Series))
		}
	}
	return &Timeline{data: d}, nil
}

// noValue stands for NaN in timeline.json (JSON has no NaN).
const noValue = -1e308

func jsonData(d data) data {
	out := d
	out.Samples = make([]Sample, len(d.Samples))
	for i, s := range d.Samples {
		v := append([]float64(nil), s.Values...)
		for j := range v {
			if math.IsNaN(v[j]) {
				v[j] = noValue
			}
		}
		out.Samples[i] = Sample{At: s.At, Values: v}
	}
	return out
}
