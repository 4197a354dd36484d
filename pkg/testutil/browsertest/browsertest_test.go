package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// page is a chart of two series after one dashed marker line, written with
// the marker's attributes as given.
func page(marker string) string {
	return `<!doctype html><meta charset=utf-8><title>t</title><body>
<svg role="img" aria-label="replicas" width="400" height="120" viewBox="0 0 400 120">
` + marker + `
<polyline data-series="replicas" fill="none" stroke="#1f77b4" stroke-width="2" points="10,100 100,100 100,40 390,40"/>
<polyline data-series="ready" fill="none" stroke="#2ca02c" stroke-width="2" points="10,110 150,110 150,60 390,60"/>
</svg></body>`
}

func render(t *testing.T, html string) *Page {
	t.Helper()
	path := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(path, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := Render(ctx, "file://"+path, 600)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRenderFindsEverySeriesPainted(t *testing.T) {
	p := render(t, page(`<line x1="50" x2="50" y1="0" y2="120" stroke="#999" stroke-dasharray="4"/>`))
	if problems := p.Problems(); len(problems) > 0 {
		t.Fatalf("a well-formed chart: %q", problems)
	}
	if len(p.Charts) != 1 || len(p.Charts[0].Series) != 2 {
		t.Fatalf("charts: %+v", p.Charts)
	}
	for _, s := range p.Charts[0].Series {
		if s.Pixels < 100 {
			t.Errorf("series %s: %d pixels of %s, want a whole line's worth", s.Name, s.Pixels, s.Color)
		}
	}
}

// TestRenderRejectsAChartTheParserNestedAway is the e2e timeline's old
// defect: stroke-dasharray=4/> is the value "4/", the <line> never closes,
// and every later shape becomes its child, painted by no browser.
func TestRenderRejectsAChartTheParserNestedAway(t *testing.T) {
	p := render(t, page(`<line x1=50 x2=50 y1=0 y2=120 stroke=#999 stroke-dasharray=4/>`))
	problems := strings.Join(p.Problems(), "\n")
	for _, want := range []string{
		`series "replicas" (<polyline>) is inside <line>`,
		`series "replicas" (rgb(31, 119, 180)) paints 0 pixels`,
		`series "ready" (rgb(44, 160, 44)) paints 0 pixels`,
		"shapes nested in other shapes",
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
}

func TestRenderRejectsAChartWithoutSeriesAndScriptErrors(t *testing.T) {
	p := render(t, `<!doctype html><title>t</title><body><svg role="img" aria-label="empty" width="100" height="50"></svg>
<script>undefinedFunction()</script></body>`)
	problems := strings.Join(p.Problems(), "\n")
	for _, want := range []string{`chart "empty" draws no series`, "exception at line 2: ReferenceError"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
}
