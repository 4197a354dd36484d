package timeline

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/testutil/browsertest"
)

// synthetic is a short HTTP scenario as the e2e records it: 16 in flight
// from 20 s, replicas 1 → 5 → 8, the HPA's reads, back to 1 after the load.
func synthetic() *Timeline {
	tl := New("amp: 16 requests in flight, AverageValue 2 -> 8 pods",
		Series{"in flight", "load"}, Series{"replicas", "pods"}, Series{"ready", "pods"}, Series{"HPA reads", "HPA reads"})
	for s := 0; s <= 120; s++ {
		at := time.Duration(s) * time.Second
		load, replicas, ready, reads := 0.0, 1.0, 1.0, math.NaN()
		if s >= 20 && s < 90 {
			load = 16
		}
		switch {
		case s >= 100:
			replicas = 1
		case s >= 45:
			replicas = 8
		case s >= 30:
			replicas = 5
		}
		ready = replicas
		if s >= 47 && s < 100 {
			ready = 8
		} else if s >= 32 && s < 47 {
			ready = 5
		} else if s >= 30 && s < 32 {
			ready = 1
		}
		if s >= 10 {
			reads = load
		}
		tl.AddAt(at, load, replicas, ready, reads)
	}
	tl.MarkAt(20*time.Second, "load 16", false)
	tl.ExpectAt(20*time.Second, "pods", 7, 9, "⌈16/2⌉ ± 1")
	tl.MarkAt(60*time.Second, "Prometheus stopped", true)
	tl.MarkAt(70*time.Second, "Prometheus back", true)
	tl.MarkAt(90*time.Second, "load stopped", false)
	tl.ExpectAt(90*time.Second, "pods", 1, 1, "min 1 after the window")
	return tl
}

func save(t *testing.T, tl *Timeline) string {
	t.Helper()
	page, err := tl.Save(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// TestPagePaintsEverySeriesInChromium renders the page as a user opens it:
// every panel paints each of its series, nothing is nested away.
func TestPagePaintsEverySeriesInChromium(t *testing.T) {
	tl := synthetic()
	p := browsertest.Check(t, "file://"+save(t, tl), "timeline-synthetic", 1000)
	var labels []string
	for _, c := range p.Charts {
		labels = append(labels, c.Label)
		for _, s := range c.Series {
			if s.Pixels < 200 {
				t.Errorf("%s: series %s paints %d pixels: a 120 s step line should paint hundreds", c.Label, s.Name, s.Pixels)
			}
		}
	}
	if got := strings.Join(labels, ", "); got != "load over time, pods over time, HPA reads over time" {
		t.Errorf("panels %q, want load, pods, HPA reads", got)
	}
	for _, want := range []string{"120 s", "⌈16/2⌉ ± 1", "Prometheus stopped", "load stopped", "replicas (last 1, max 8)"} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("the page as rendered lacks %q", want)
		}
	}
}

// TestPageWithTheOldUnquotedMarkerPaintsNothing is the defect that left
// every e2e chart blank: the marker line written stroke-dasharray=4/> is
// read as the value "4/", the <line> never closes, and every later shape
// becomes its child. The browser check must fail on it.
func TestPageWithTheOldUnquotedMarkerPaintsNothing(t *testing.T) {
	page := synthetic().Page()
	marker := regexp.MustCompile(`<line x1="([0-9.]+)" x2="([0-9.]+)" y1="([0-9.]+)" y2="([0-9.]+)" stroke="#888" stroke-width="1" stroke-dasharray="5 3"><title>[^<]*</title></line>`)
	old := marker.ReplaceAllString(page, `<line x1=$1 x2=$2 y1=$3 y2=$4 stroke=#999 stroke-dasharray=4/>`)
	if old == page {
		t.Fatal("no marker line to rewrite")
	}
	path := filepath.Join(t.TempDir(), "old.html")
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := browsertest.Render(t.Context(), "file://"+path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(p.Problems(), "\n")
	for _, want := range []string{`"replicas" (<path>) is inside <line>`, `series "replicas" (rgb(31, 119, 180)) paints 0 pixels`} {
		if !strings.Contains(problems, want) {
			t.Errorf("the old marker: problems lack %q:\n%s", want, problems)
		}
	}
}

func TestSaveAndLoadKeepTheNumbers(t *testing.T) {
	tl := synthetic()
	dir := filepath.Dir(save(t, tl))
	back, err := Load(filepath.Join(dir, "timeline.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Page() != tl.Page() {
		t.Error("a loaded timeline draws another page")
	}
	if got := back.Max(1); got != 8 {
		t.Errorf("replicas max %g, want 8", got)
	}
}

func TestNiceSteps(t *testing.T) {
	for raw, want := range map[float64]float64{0.2: 1, 1.6: 2, 3: 5, 7: 10, 12: 20, 45: 50} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%g) = %g, want %g", raw, got, want)
		}
	}
}

// TestIndexLinksEveryRunInChromium renders the index page as make e2e
// writes it, beside one run's page: each row shows its summary and links to
// a page that is there.
func TestIndexLinksEveryRunInChromium(t *testing.T) {
	dir := t.TempDir()
	if _, err := synthetic().Save(filepath.Join(dir, "TestAMP")); err != nil {
		t.Fatal(err)
	}
	rows := []IndexRow{
		{Name: "TestAMP", Page: "TestAMP/timeline.html", Cells: []string{"56s", "4m59s"}},
		{Name: "TestBroken", Page: "TestBroken/timeline.html", Failed: true, Cells: []string{"-", "1m2s"}},
	}
	index := filepath.Join(dir, "index.html")
	if err := WriteIndex(index, "make e2e", "synthetic", []string{"first scale-out", "whole run"}, rows); err != nil {
		t.Fatal(err)
	}
	p := browsertest.Check(t, "file://"+index, "e2e-index", 1000)
	for _, want := range []string{"TestAMP\tok\t56s\t4m59s", "TestBroken\tFAIL\t-\t1m2s"} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("the index as rendered lacks the row %q:\n%s", want, p.Text)
		}
	}
	if len(p.Links) != 2 {
		t.Fatalf("links %+v, want one a row", p.Links)
	}
	if got, want := p.Links[0].Href, "file://"+filepath.Join(dir, "TestAMP/timeline.html"); got != want {
		t.Errorf("first row links %s, want %s", got, want)
	}
	if _, err := os.Stat(strings.TrimPrefix(p.Links[0].Href, "file://")); err != nil {
		t.Errorf("the first row's page: %v", err)
	}
}

// TestRecordedE2ETimelinePaintsInChromium renders a timeline a real make
// e2e run recorded (testdata/e2e-amp.json is
// bin/e2e/TestAMPScalesToWhatTheLoadNeedsAndBack/timeline.json): the
// picture in the README is this test's screenshot (make docs-shots).
func TestRecordedE2ETimelinePaintsInChromium(t *testing.T) {
	tl, err := Load(filepath.Join("testdata", "e2e-amp.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := browsertest.Check(t, "file://"+save(t, tl), "e2e-timeline-amp", 1000)
	if len(p.Charts) != 3 {
		t.Fatalf("%d charts, want the load, the pods and the HPA's reads", len(p.Charts))
	}
	if got := tl.Max(1); got < 7 || got > 9 {
		t.Errorf("the recorded run peaked at %g replicas, want ⌈16/2⌉ ± 1", got)
	}
}
