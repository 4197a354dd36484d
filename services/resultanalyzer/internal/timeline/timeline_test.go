package timeline

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/services/resultanalyzer/internal/events"
)

var t0 = time.Date(2024, 1, 17, 5, 50, 45, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func render(t *testing.T, evs []events.Event) string {
	t.Helper()
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, Build(evs, at(3600))); err != nil {
		t.Fatal(err)
	}
	checkSVGWellFormed(t, b.String())
	return b.String()
}

var svgRe = regexp.MustCompile(`(?s)<svg\b.*?</svg>`)

// checkSVGWellFormed parses every inline SVG as XML: a stray quote or angle
// bracket from client text would break it.
func checkSVGWellFormed(t *testing.T, page string) {
	t.Helper()
	for _, svg := range svgRe.FindAllString(page, -1) {
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("SVG is not well-formed XML: %v\n%.2000s", err, svg)
			}
		}
	}
}

func TestPageWithNoEvents(t *testing.T) {
	page := render(t, nil)
	for _, want := range []string{"No events yet", "<b>0</b>processed", "<b>0</b>killed"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, `class="bar`) || strings.Contains(page, "<table") {
		t.Errorf("empty page draws bars or tables:\n%s", page)
	}
}

func TestPageDrawsABarPerRunAndTheConcurrencyLine(t *testing.T) {
	evs := []events.Event{
		{Seq: 1, Kind: events.Processed, Count: 1, JobID: "encoder-a", MessageID: "m1", Start: at(0), End: at(60), Outcome: "encoded", RecordedAt: at(60)},
		{Seq: 2, Kind: events.Killed, Count: 1, JobID: "encoder-b", MessageID: "m2", Start: at(10), End: at(30), RecordedAt: at(30)},
		{Seq: 3, Kind: events.Processed, Count: 2, JobID: "encoder-a", MessageID: "m1", Start: at(70), End: at(90), RecordedAt: at(90)},
		{Seq: 4, Kind: events.Processed, Count: 3, RecordedAt: at(95)}, // the seed's empty body
	}
	page := render(t, evs)
	if n := strings.Count(page, `<rect class="bar processed" data-series="processed"`); n != 3 {
		t.Errorf("%d processed bars, want 3", n)
	}
	if n := strings.Count(page, `<rect class="bar killed" data-series="killed"`); n != 1 {
		t.Errorf("%d killed bars, want 1", n)
	}
	// encoder-a's two runs share a row: three lanes in all.
	if n := strings.Count(page, `text-anchor="end"><title>`); n != 3 {
		t.Errorf("%d lanes, want 3", n)
	}
	for _, want := range []string{
		`<polyline class="line" data-series="running jobs" points="`,
		"<title>encoder-a\n#1 processed count 1\nmessage m1\nattempt 1 of 2\noutcome encoded\n2024-01-17 05:50:45.000 → 2024-01-17 05:51:45.000 (1m0s)</title>",
		"<title>encoder-b\n#2 kill count 1",
		"(no job id) #4",
		"<b>2</b>peak concurrent jobs",
		"<b>1</b>duplicate message ids",
		`<td class="id">m1</td><td class="num">2</td>`,
		"2024-01-17 05:50:45.000", // first
		"2024-01-17 05:52:20.000", // last
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The concurrency series is 1, 2, 1, 0, 1, 0, then the instant 1, 0: the
	// line has two vertices per step plus its two ends.
	p := Build(evs, at(0))
	if got := strings.Count(p.Conc.Line, " ") + 1; got != 2+2*8 {
		t.Errorf("line has %d points: %s", got, p.Conc.Line)
	}
}

func TestPageEscapesClientText(t *testing.T) {
	hostile := `"><script>alert(1)</script><rect onload='x'>&amp;`
	evs := []events.Event{{
		Seq: 1, Kind: events.Processed, Count: 1, JobID: hostile, MessageID: hostile,
		Outcome: "<b>x</b>", Detail: hostile, Start: at(0), End: at(5), RecordedAt: at(5),
	}, {
		Seq: 2, Kind: events.Processed, Count: 2, MessageID: hostile, RecordedAt: at(6),
	}}
	page := render(t, evs)
	for _, bad := range []string{"<script>", "<rect onload", "<b>x</b>", `onload='x'`} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(page, "&amp;amp;") {
		t.Errorf("escaped job id missing")
	}
}

func TestPageCapsWhatItDrawsForManyEvents(t *testing.T) {
	var evs []events.Event
	for i := range 1000 {
		evs = append(evs, events.Event{
			Seq: i + 1, Kind: events.Processed, Count: i + 1, JobID: fmt.Sprintf("job-%04d", i),
			Start: at(i), End: at(i + 30), RecordedAt: at(i + 30),
		})
	}
	page := render(t, evs)
	if n := strings.Count(page, `<rect class="bar`); n != MaxRows {
		t.Errorf("%d bars, want %d", n, MaxRows)
	}
	if !strings.Contains(page, fmt.Sprintf("Showing the latest %d of 1000 job rows", MaxRows)) {
		t.Error("page does not say rows were capped")
	}
	if !strings.Contains(page, "job-0999") || strings.Contains(page, "job-0799<") {
		t.Error("want the latest rows drawn")
	}
	if n := strings.Count(page, `<tr id="e`); n != MaxRecent {
		t.Errorf("%d table rows, want %d", n, MaxRecent)
	}
	if !strings.Contains(page, "<b>1000</b>events") || !strings.Contains(page, "<b>31</b>peak concurrent jobs") {
		t.Error("summary does not count every event")
	}
	if len(page) > 512<<10 {
		t.Errorf("page is %d bytes", len(page))
	}

	// One job id reporting thousands of runs: bars are capped too.
	var same []events.Event
	for i := range MaxBars + 500 {
		same = append(same, events.Event{Seq: i + 1, Kind: events.Killed, Count: i + 1, JobID: "retry", RecordedAt: at(i)})
	}
	page = render(t, same)
	if n := strings.Count(page, `<rect class="bar`); n != MaxBars {
		t.Errorf("%d bars, want %d", n, MaxBars)
	}
	if !strings.Contains(page, fmt.Sprintf("Showing the latest %d of %d runs", MaxBars, MaxBars+500)) {
		t.Error("page does not say bars were capped")
	}
}

type list []events.Event

func (l list) List() []events.Event { return l }

func TestHandlerServesHTMLWithAStrictPolicy(t *testing.T) {
	h := Handler(list{{Seq: 1, Kind: events.Processed, Count: 1, RecordedAt: t0}}, slog.New(slog.DiscardHandler))
	tests := []struct {
		query   string
		refresh string
	}{
		{"", ""},
		{"?refresh=5", `<meta http-equiv="refresh" content="5">`},
		{"?refresh=999999", `<meta http-equiv="refresh" content="3600">`},
		{"?refresh=soon", ""},
		{"?refresh=-1", ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/"+tt.query, nil))
		body := rec.Body.String()
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" ||
			!strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s: %d %v", tt.query, rec.Code, rec.Header())
		}
		if tt.refresh == "" && strings.Contains(body, `http-equiv="refresh"`) {
			t.Errorf("%s: unexpected refresh", tt.query)
		}
		if tt.refresh != "" && !strings.Contains(body, tt.refresh) {
			t.Errorf("%s: want %s", tt.query, tt.refresh)
		}
	}
}

var (
	hrefRe = regexp.MustCompile(`href="([^"]*)"`)
	liveRe = regexp.MustCompile(`(?s)<p class="muted" id="live">.*?</p>`)
)

// TestSavedPageLinksStayInThePageOrSayTheyNeedTheService opens the page as a
// saved file would: every link is either a fragment of an element the page
// has, or a relative link in the paragraph that says it needs the service.
func TestSavedPageLinksStayInThePageOrSayTheyNeedTheService(t *testing.T) {
	var evs []events.Event
	for i := range MaxRecent + 5 { // enough for every note with a link
		evs = append(evs, events.Event{Seq: i + 1, Kind: events.Processed, Count: i + 1, MessageID: fmt.Sprintf("m%d", i%(MaxDuplicates+3)), RecordedAt: at(i)})
	}
	for _, tt := range []struct {
		name string
		p    Page
	}{
		{"no events", Build(nil, at(0))},
		{"many events", Build(evs, at(3600))},
		{"refreshing", func() Page { p := Build(evs, at(3600)); p.Refresh = 5; return p }()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := pageTmpl.Execute(&b, tt.p); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			live := liveRe.FindString(page)
			if !strings.Contains(live, "From the running service (not from a saved copy") {
				t.Fatalf("no paragraph says which links need the service: %q", live)
			}
			inLive := map[string]bool{}
			for _, m := range hrefRe.FindAllStringSubmatch(live, -1) {
				inLive[m[1]] = true
			}
			for _, want := range []string{"events", "summary", "get/count"} {
				if !inLive[want] {
					t.Errorf("no relative link to %s", want)
				}
			}
			for _, m := range hrefRe.FindAllStringSubmatch(page, -1) {
				href := m[1]
				u, err := url.Parse(href)
				switch {
				case err != nil:
					t.Errorf("bad href %q: %v", href, err)
				case strings.HasPrefix(href, "#"):
					if !strings.Contains(page, `id="`+href[1:]+`"`) {
						t.Errorf("link %q: no element with that id", href)
					}
				case u.Scheme != "" || u.Host != "" || strings.HasPrefix(u.Path, "/"):
					t.Errorf("link %q is not relative: dead in a saved copy, wrong behind a path prefix", href)
				case !inLive[href] && !strings.Contains(page, `<a href="`+href+`">`+href+`</a> on the running service`):
					t.Errorf("link %q needs the service but does not say so", href)
				}
			}
		})
	}
}

func TestRetryLinksToTheAttemptBeforeIt(t *testing.T) {
	evs := []events.Event{
		{Seq: 1, Kind: events.Processed, Count: 1, JobID: "job-1", MessageID: "m-other", Start: at(0), End: at(2), RecordedAt: at(2)},
		{Seq: 2, Kind: events.Killed, Count: 1, JobID: "job-2", MessageID: "m-retried", Start: at(0), End: at(3), RecordedAt: at(3)},
		{Seq: 3, Kind: events.Processed, Count: 2, JobID: "job-3", MessageID: "m-third", Start: at(1), End: at(4), RecordedAt: at(4)},
		{Seq: 4, Kind: events.Processed, Count: 3, JobID: "job-4", MessageID: "m-retried", Start: at(4), End: at(9), RecordedAt: at(9)},
	}
	page := render(t, evs)
	rows := map[string]string{}
	for _, r := range regexp.MustCompile(`<tr id="(e\d+)".*</tr>`).FindAllStringSubmatch(page, -1) {
		rows[r[1]] = r[0]
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows with an id, want 4", len(rows))
	}
	for _, tt := range []struct{ row, want string }{
		{"e4", `attempt 2 of 2, retry of <a href="#e2" class="killed">#2 killed</a>`},
		{"e2", `attempt 1 of 2, retried as <a href="#e4" class="processed">#4 processed</a>`},
	} {
		if !strings.Contains(rows[tt.row], tt.want) {
			t.Errorf("row %s lacks %q:\n%s", tt.row, tt.want, rows[tt.row])
		}
	}
	for _, r := range []string{"e1", "e3"} {
		if strings.Contains(rows[r], "attempt") {
			t.Errorf("row %s has one attempt but says otherwise:\n%s", r, rows[r])
		}
	}
	// The retry's bar says so too, and every bar links to its row.
	if !strings.Contains(page, "message m-retried\nattempt 2 of 2, retry of #2 killed\n") {
		t.Error("the retry's bar does not name the attempt before it")
	}
	if n := len(regexp.MustCompile(`<a href="#e\d+"`).FindAllString(page, -1)); n != 4+2 {
		t.Errorf("%d links to rows, want a bar per event and the two attempt links", n)
	}

	// An earlier attempt older than the table is named, not linked.
	var many []events.Event
	many = append(many, events.Event{Seq: 1, Kind: events.Killed, Count: 1, MessageID: "m-old", RecordedAt: at(0)})
	for i := 2; i <= MaxRecent+1; i++ {
		many = append(many, events.Event{Seq: i, Kind: events.Processed, Count: i - 1, RecordedAt: at(i)})
	}
	many = append(many, events.Event{Seq: MaxRecent + 2, Kind: events.Processed, Count: MaxRecent + 1, MessageID: "m-old", RecordedAt: at(MaxRecent + 2)})
	page = render(t, many)
	if !strings.Contains(page, "attempt 2 of 2, retry of #1 killed (not in this table)") || strings.Contains(page, `href="#e1"`) {
		t.Error("an attempt outside the table should be named without a link")
	}
}
