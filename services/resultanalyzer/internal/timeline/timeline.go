// Package timeline renders the result analyzer's page: the summary numbers,
// an SVG chart of running jobs over time, one bar per job run, and the latest
// events. Everything is drawn on the server (html/template, inline SVG and
// CSS, no script), so it works from a `kubectl port-forward` with no internet,
// and a saved copy of the page (make demo writes bin/demo-logs/timeline.html)
// works from the file: its navigation stays within the page, and the only
// links that need the service are relative and labelled so.
package timeline

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keda-eks-samples/workloads/services/resultanalyzer/internal/events"
)

// Caps that keep the page small whatever the number of events.
const (
	MaxRows       = 200  // job rows drawn (the latest ones)
	MaxBars       = 2000 // bars drawn within those rows (the latest ones)
	MaxRecent     = 100  // rows of the events table (newest first)
	MaxDuplicates = 20   // duplicate message ids listed
	MaxRefresh    = 3600 // seconds, for ?refresh=
)

// Chart geometry, in SVG user units.
const (
	width       = 1000
	plotLeft    = 180
	plotRight   = width - 20
	plotW       = plotRight - plotLeft
	rowH        = 14
	barH        = 10
	axisH       = 24
	concTop     = 12
	concPlotH   = 110
	concHeight  = concTop + concPlotH + axisH
	labelRunes  = 24
	detailRunes = 120
	numTicks    = 6
)

//go:embed page.html.tmpl
var pageSrc string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"f1": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
}).Parse(pageSrc))

// Source is what the page reads: every event, in recording order.
type Source interface {
	List() []events.Event
}

// Handler serves GET /. The optional query ?refresh=N (1..3600 seconds) makes
// the browser reload the page every N seconds, to watch a run live.
func Handler(src Source, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := Build(src.List(), time.Now())
		if n, err := strconv.Atoi(r.URL.Query().Get("refresh")); err == nil && n > 0 {
			p.Refresh = min(n, MaxRefresh)
		}
		var buf bytes.Buffer
		if err := pageTmpl.Execute(&buf, p); err != nil {
			log.Error("render timeline", "err", err)
			http.Error(w, "render failed", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		// Job ids come from clients: even if escaping failed, nothing runs.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		_, _ = buf.WriteTo(w)
	})
}

// Page is everything the template prints, already laid out.
type Page struct {
	Generated  string
	Refresh    int
	Summary    events.Summary
	Span       string
	PeakAt     string
	First      string
	Last       string
	Duplicates []events.Duplicate
	MoreDups   int

	Geo        Geometry
	Conc       Conc
	Jobs       Jobs
	Recent     []Row
	RecentCap  int
	TotalCount int
	// Seed is the seed's GET /get/count lines of the events in Recent, in
	// recording order.
	Seed []string
}

// Geometry is the fixed layout both charts share.
type Geometry struct {
	Width, LabelX, PlotLeft, PlotRight          int
	ConcTop, ConcBottom, ConcLabelY, ConcHeight int
}

var geo = Geometry{
	Width: width, LabelX: plotLeft - 8, PlotLeft: plotLeft, PlotRight: plotRight,
	ConcTop: concTop, ConcBottom: concTop + concPlotH, ConcLabelY: concTop + concPlotH + 18, ConcHeight: concHeight,
}

// Conc is the concurrency chart.
type Conc struct {
	Line, Area string // polyline / polygon points
	YTicks     []YTick
	XTicks     []XTick
}

// Jobs is the chart with one row per job.
type Jobs struct {
	Height     int // of the SVG
	GridBottom int // y of the time axis
	AxisY      int // y of its labels
	Lanes      []Lane
	Bars       []Bar
	XTicks     []XTick
	RowsShown  int
	RowsTotal  int
	BarsShown  int
	BarsInRows int
}

// Lane is a row label.
type Lane struct {
	Y           float64
	Label, Full string
}

// Bar is one event's interval.
type Bar struct {
	X, Y, W, H float64
	Class      string // "processed" or "killed": a fixed CSS class, never client text
	Title      string
	Href       string // "#e<seq>": its row in the events table, "" if not there
}

// XTick is a time gridline; YTick a count gridline.
type XTick struct {
	X      float64
	Label  string
	Anchor string // text-anchor: the last label ends at the plot's edge
}

type YTick struct {
	Y     float64
	Label int
}

// Row is one line of the events table; its element id is "e<seq>".
type Row struct {
	events.Event
	Class                 string
	Start, End, Recorded  string
	Duration, DetailShort string
	SeedLine              string
	// Attempt is "attempt 2 of 3" when other events carry the same message
	// id (SQS redelivers a message whose job was killed, or outlived its
	// visibility timeout); Prev and Next are the attempts either side.
	Attempt    string
	Prev, Next *Ref
}

// Ref points at another event of the page.
type Ref struct {
	Seq   int
	Kind  events.Kind
	Class string
	Href  string // "#e<seq>", or "" when that event is not in the table
}

// Build lays out the page for evs (in recording order) at time now.
func Build(evs []events.Event, now time.Time) Page {
	sum := events.Summarize(evs)
	p := Page{
		Generated:  now.UTC().Format("2006-01-02 15:04:05 MST"),
		Summary:    sum,
		Geo:        geo,
		RecentCap:  MaxRecent,
		TotalCount: len(evs),
	}
	if len(evs) == 0 {
		return p
	}
	p.First, p.Last = clock(sum.First, true), clock(sum.Last, true)
	p.Span = sum.Last.Sub(sum.First).Round(time.Millisecond).String()
	p.PeakAt = clock(sum.PeakAt, true)
	p.Duplicates = sum.Duplicates[:min(len(sum.Duplicates), MaxDuplicates)]
	p.MoreDups = len(sum.Duplicates) - len(p.Duplicates)

	recent := evs[max(0, len(evs)-MaxRecent):]
	inTable := make(map[int]bool, len(recent))
	for _, e := range recent {
		inTable[e.Seq] = true
		p.Seed = append(p.Seed, e.SeedLine())
	}
	att := attempts(evs, inTable)

	sc := newScale(sum.First, sum.Last)
	p.Conc = buildConc(sum, sc)
	p.Jobs = buildJobs(evs, sc, att, inTable)

	for i := len(recent) - 1; i >= 0; i-- {
		p.Recent = append(p.Recent, row(recent[i], att[recent[i].Seq]))
	}
	return p
}

// attempt places an event among those with the same message id.
type attempt struct {
	n, of      int
	prev, next *Ref
}

func (a attempt) label() string {
	if a.of < 2 {
		return ""
	}
	return fmt.Sprintf("attempt %d of %d", a.n, a.of)
}

// attempts maps the Seq of every event whose message id another event also
// carries to its place among them, in recording order, so the page can link
// a retry to the attempt before it (typically a killed job).
func attempts(evs []events.Event, inTable map[int]bool) map[int]attempt {
	byID := map[string][]int{}
	for i, e := range evs {
		if e.MessageID != "" {
			byID[e.MessageID] = append(byID[e.MessageID], i)
		}
	}
	ref := func(e events.Event) *Ref {
		r := &Ref{Seq: e.Seq, Kind: e.Kind, Class: class(e.Kind)}
		if inTable[e.Seq] {
			r.Href = anchor(e.Seq)
		}
		return r
	}
	out := map[int]attempt{}
	for _, idx := range byID {
		if len(idx) < 2 {
			continue
		}
		for k, i := range idx {
			a := attempt{n: k + 1, of: len(idx)}
			if k > 0 {
				a.prev = ref(evs[idx[k-1]])
			}
			if k+1 < len(idx) {
				a.next = ref(evs[idx[k+1]])
			}
			out[evs[i].Seq] = a
		}
	}
	return out
}

// anchor is the fragment of an event's row in the events table.
func anchor(seq int) string { return "#e" + strconv.Itoa(seq) }

// scale maps time to x.
type scale struct {
	t0     time.Time
	span   time.Duration
	layout string
}

func newScale(first, last time.Time) scale {
	span := last.Sub(first)
	if span < time.Second { // one instant, or nearly: show a second around it
		first = first.Add(span/2 - 500*time.Millisecond)
		span = time.Second
	}
	layout := "15:04:05"
	switch {
	case span < 10*time.Second:
		layout = "15:04:05.000"
	case span > 24*time.Hour:
		layout = "01-02 15:04"
	}
	return scale{first, span, layout}
}

func (s scale) x(t time.Time) float64 {
	return plotLeft + float64(t.Sub(s.t0))/float64(s.span)*plotW
}

func (s scale) ticks() []XTick {
	out := make([]XTick, numTicks)
	for i := range out {
		t := s.t0.Add(time.Duration(float64(s.span) * float64(i) / float64(numTicks-1)))
		out[i] = XTick{s.x(t), t.UTC().Format(s.layout), "middle"}
	}
	out[len(out)-1].Anchor = "end"
	return out
}

func buildConc(sum events.Summary, sc scale) Conc {
	c := Conc{XTicks: sc.ticks()}
	peak := max(sum.PeakConcurrency, 1)
	y := func(n int) float64 { return concTop + concPlotH - float64(n)/float64(peak)*concPlotH }
	for _, n := range slices.Compact([]int{0, peak / 2, peak}) {
		c.YTicks = append(c.YTicks, YTick{y(n), n})
	}
	var pts strings.Builder
	add := func(x float64, n int) { fmt.Fprintf(&pts, "%.1f,%.1f ", x, y(n)) }
	prev := 0
	add(plotLeft, 0)
	for _, pt := range sum.Concurrency {
		x := sc.x(pt.At)
		add(x, prev)
		add(x, pt.Running)
		prev = pt.Running
	}
	add(plotRight, prev)
	c.Line = strings.TrimSpace(pts.String())
	c.Area = c.Line + fmt.Sprintf(" %.1f,%.1f", float64(plotRight), y(0))
	return c
}

func buildJobs(evs []events.Event, sc scale, att map[int]attempt, inTable map[int]bool) Jobs {
	// One lane per job id (events without one get a lane each), ordered by
	// the first start in the lane.
	type lane struct {
		key   string
		label string
		first time.Time
		seq   int
		evs   []events.Event
	}
	byKey := map[string]*lane{}
	var lanes []*lane
	for _, e := range evs {
		key, label := "id:"+e.JobID, e.JobID
		if e.JobID == "" {
			key, label = "seq:"+strconv.Itoa(e.Seq), "(no job id) #"+strconv.Itoa(e.Seq)
		}
		start, _ := e.Interval()
		l := byKey[key]
		if l == nil {
			l = &lane{key: key, label: label, first: start, seq: e.Seq}
			byKey[key] = l
			lanes = append(lanes, l)
		}
		if start.Before(l.first) {
			l.first = start
		}
		l.evs = append(l.evs, e)
	}
	slices.SortStableFunc(lanes, func(a, b *lane) int { return a.first.Compare(b.first) })

	j := Jobs{RowsTotal: len(lanes)}
	shown := lanes[max(0, len(lanes)-MaxRows):]
	j.RowsShown = len(shown)
	var bars []Bar
	var barSeqs []int
	for i, l := range shown {
		y := float64(i * rowH)
		j.Lanes = append(j.Lanes, Lane{Y: y + barH, Label: truncate(l.label, labelRunes), Full: l.label})
		for _, e := range l.evs {
			start, end := e.Interval()
			x0, x1 := sc.x(start), sc.x(end)
			w := max(x1-x0, 2) // instants stay visible
			if x0+w > plotRight {
				x0 = plotRight - w
			}
			b := Bar{X: x0, Y: y + (rowH-barH)/2, W: w, H: barH, Class: class(e.Kind), Title: barTitle(e, start, end, att[e.Seq])}
			if inTable[e.Seq] {
				b.Href = anchor(e.Seq)
			}
			bars = append(bars, b)
			barSeqs = append(barSeqs, e.Seq)
		}
	}
	j.BarsInRows = len(bars)
	if len(bars) > MaxBars { // keep the latest recorded
		cut := slices.Clone(barSeqs)
		slices.Sort(cut)
		minSeq := cut[len(cut)-MaxBars]
		for i, b := range bars {
			if barSeqs[i] >= minSeq {
				j.Bars = append(j.Bars, b)
			}
		}
	} else {
		j.Bars = bars
	}
	j.BarsShown = len(j.Bars)
	j.GridBottom = len(shown) * rowH
	j.AxisY = j.GridBottom + 16
	j.Height = j.GridBottom + axisH
	j.XTicks = sc.ticks()
	return j
}

func barTitle(e events.Event, start, end time.Time, a attempt) string {
	var b strings.Builder
	job := e.JobID
	if job == "" {
		job = "(no job id)"
	}
	word := "processed"
	if e.Kind == events.Killed {
		word = "kill"
	}
	fmt.Fprintf(&b, "%s\n#%d %s count %d", job, e.Seq, word, e.Count)
	if e.MessageID != "" {
		fmt.Fprintf(&b, "\nmessage %s", e.MessageID)
	}
	if l := a.label(); l != "" {
		fmt.Fprintf(&b, "\n%s", l)
		if a.prev != nil {
			fmt.Fprintf(&b, ", retry of #%d %s", a.prev.Seq, a.prev.Kind)
		}
	}
	if e.Outcome != "" {
		fmt.Fprintf(&b, "\noutcome %s", e.Outcome)
	}
	fmt.Fprintf(&b, "\n%s → %s (%s)", clock(start, true), clock(end, true), end.Sub(start))
	if e.Start.IsZero() {
		b.WriteString("\n(no start reported: shown at the time it was recorded)")
	}
	return b.String()
}

func row(e events.Event, a attempt) Row {
	r := Row{
		Event:    e,
		Class:    class(e.Kind),
		Start:    clock(e.Start, false),
		End:      clock(e.End, false),
		Recorded: clock(e.RecordedAt, false),
		SeedLine: e.SeedLine(),
		Attempt:  a.label(),
		Prev:     a.prev,
		Next:     a.next,
	}
	if !e.Start.IsZero() && !e.End.IsZero() {
		r.Duration = e.End.Sub(e.Start).Round(time.Millisecond).String()
	}
	r.DetailShort = truncate(e.Detail, detailRunes)
	return r
}

// class is the CSS class of a kind: a constant, never client text.
func class(k events.Kind) string {
	if k == events.Killed {
		return "killed"
	}
	return "processed"
}

// clock formats t in UTC; "" for the zero time.
func clock(t time.Time, withDate bool) string {
	if t.IsZero() {
		return ""
	}
	if withDate {
		return t.UTC().Format("2006-01-02 15:04:05.000")
	}
	return t.UTC().Format("01-02 15:04:05.000")
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
