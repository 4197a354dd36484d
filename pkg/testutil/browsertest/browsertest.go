// Package browsertest renders a page in headless Chromium (Debian's
// `chromium` package) and checks that every chart on it paints what it
// claims to draw, the way a user's browser would show it.
//
// The contract a page keeps: every chart is an <svg role="img">, and every
// shape that draws one of its series carries data-series="<name>" and an
// opaque stroke (or, without one, an opaque fill) of a colour used by nothing
// else in that chart. Render then checks, in the DOM as the browser built
// it, that each series shape sits in its <svg> through containers only
// (svg, g, a) — an unclosed or unquoted tag nests later shapes inside
// another shape, which SVG does not paint — and, in a screenshot, that
// pixels of each series' colour appear inside its chart's box.
//
// chromedp drives the browser over a pipe (no port is opened).
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// MinPixels is how many pixels of a series' colour its chart must show.
// A 2 px step line across a chart paints hundreds; a chart whose shapes
// the browser did not attach to the SVG paints none.
const MinPixels = 10

// Browsers are the executables tried, in order (Debian names it chromium).
var browsers = []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"}

// Chart is one <svg role="img"> as the browser laid it out.
type Chart struct {
	Label  string   `json:"label"` // its aria-label
	X      float64  `json:"x"`     // page coordinates, CSS pixels
	Y      float64  `json:"y"`
	W      float64  `json:"w"`
	H      float64  `json:"h"`
	Series []Series `json:"series"`
}

// Series is one shape with data-series in a chart.
type Series struct {
	Name   string `json:"name"`
	Tag    string `json:"tag"`
	Color  string `json:"color"`  // computed, "rgb(r, g, b)"
	Nested string `json:"nested"` // the non-container elements between it and its svg, if any
	Pixels int    `json:"-"`      // pixels of Color inside the chart's box in the screenshot
}

// Link is an <a href> of the page, resolved by the browser.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Page is what the browser made of a page.
type Page struct {
	URL        string
	Title      string   `json:"title"`
	Text       string   `json:"text"` // document.body.innerText
	Charts     []Chart  `json:"charts"`
	Links      []Link   `json:"links"`
	Misnested  []string `json:"misnested"` // shapes inside other shapes (outerHTML's start), anywhere in an svg
	Scale      float64  `json:"dpr"`
	Errors     []string `json:"-"` // uncaught exceptions and console errors
	Screenshot image.Image
	PNG        []byte // the screenshot as taken
}

// inspect is evaluated in the page after it loaded.
const inspect = `(() => {
  const containers = new Set(["svg", "g", "a"]);
  const shapes = "line,polyline,polygon,rect,path,circle,ellipse,text";
  const out = {title: document.title, text: document.body ? document.body.innerText : "", charts: [], links: [], misnested: [], dpr: window.devicePixelRatio};
  document.querySelectorAll('svg[role="img"]').forEach(svg => {
    const r = svg.getBoundingClientRect();
    const chart = {label: svg.getAttribute("aria-label") || "", x: r.left + window.scrollX, y: r.top + window.scrollY, w: r.width, h: r.height, series: []};
    svg.querySelectorAll("[data-series]").forEach(el => {
      const between = [];
      for (let p = el.parentElement; p && p !== svg; p = p.parentElement) {
        if (!containers.has(p.localName)) between.push(p.localName);
      }
      const cs = getComputedStyle(el);
      const color = cs.stroke && cs.stroke !== "none" ? cs.stroke : cs.fill;
      chart.series.push({name: el.getAttribute("data-series"), tag: el.localName, color: color, nested: between.join(">")});
    });
    out.charts.push(chart);
  });
  document.querySelectorAll("svg").forEach(svg => svg.querySelectorAll(shapes).forEach(el => {
    const p = el.parentElement;
    if (p && p !== svg && !containers.has(p.localName)) out.misnested.push(el.outerHTML.slice(0, 80) + " inside <" + p.localName + ">");
  }));
  document.querySelectorAll("a[href]").forEach(a => out.links.push({href: new URL(a.getAttribute("href"), document.baseURI).href, text: a.textContent}));
  return out;
})()`

// Render loads url in a fresh headless Chromium, width pixels wide, and
// returns the DOM facts above and a full-page screenshot.
func Render(ctx context.Context, url string, width int) (*Page, error) {
	exe, err := Browser()
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.WindowSize(width, 900),
		chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.Flag("hide-scrollbars", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()

	// Events arrive on chromedp's goroutine.
	var mu sync.Mutex
	var errs []string
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg = d.Exception.Description
			}
			errs = append(errs, fmt.Sprintf("exception at line %d: %s", d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				errs = append(errs, "console.error: "+strings.Join(args, " "))
			}
		}
	}); err != nil {
		return nil, fmt.Errorf("chromium: %w", err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		return nil, fmt.Errorf("chromium: load %s: %w", url, err)
	}
	p, err := chromedp.Run(bctx, chromedp.Evaluate[Page](inspect))
	if err != nil {
		return nil, fmt.Errorf("chromium: inspect %s: %w", url, err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		return nil, fmt.Errorf("chromium: screenshot %s: %w", url, err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		return nil, fmt.Errorf("chromium: screenshot of %s: %w", url, err)
	}
	mu.Lock()
	p.Errors = slices.Clone(errs)
	mu.Unlock()
	p.URL, p.Screenshot, p.PNG = url, img, shot
	if p.Scale <= 0 {
		p.Scale = 1
	}
	for i := range p.Charts {
		c := &p.Charts[i]
		for j := range c.Series {
			s := &c.Series[j]
			want, ok := parseRGB(s.Color)
			if !ok {
				continue
			}
			s.Pixels = countColor(img, box(c, p.Scale), want)
		}
	}
	return &p, nil
}

// Problems lists what a user would see wrong: charts that paint a series
// nothing or draw none, shapes the browser nested inside other shapes,
// script errors.
func (p *Page) Problems() []string {
	var out []string
	for _, c := range p.Charts {
		name := c.Label
		if name == "" {
			name = "an unlabelled chart"
		}
		if len(c.Series) == 0 {
			out = append(out, fmt.Sprintf("chart %q draws no series (no data-series shape)", name))
		}
		if c.W < 1 || c.H < 1 {
			out = append(out, fmt.Sprintf("chart %q has no size (%gx%g)", name, c.W, c.H))
		}
		for _, s := range c.Series {
			if s.Nested != "" {
				out = append(out, fmt.Sprintf("chart %q: series %q (<%s>) is inside <%s>, which SVG does not paint", name, s.Name, s.Tag, s.Nested))
			}
			if _, ok := parseRGB(s.Color); !ok {
				out = append(out, fmt.Sprintf("chart %q: series %q has no opaque colour (%q)", name, s.Name, s.Color))
			} else if s.Pixels < MinPixels {
				out = append(out, fmt.Sprintf("chart %q: series %q (%s) paints %d pixels, want at least %d", name, s.Name, s.Color, s.Pixels, MinPixels))
			}
		}
	}
	if n := len(p.Misnested); n > 0 {
		out = append(out, fmt.Sprintf("%d shapes nested in other shapes, which SVG does not paint; the first: %s", n, p.Misnested[0]))
	}
	out = append(out, p.Errors...)
	return out
}

// Check renders url and fails t with every problem found. When the
// environment variable BROWSERTEST_SHOTS names a directory, the screenshot
// is also saved there as <name>.png.
func Check(t testing.TB, url, name string, width int) *Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := Render(ctx, url, width)
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("BROWSERTEST_SHOTS"); dir != "" {
		if err := SavePNG(p, filepath.Join(dir, name+".png")); err != nil {
			t.Error(err)
		}
	}
	for _, problem := range p.Problems() {
		t.Errorf("%s in Chromium: %s", name, problem)
	}
	return p
}

// SavePNG writes the page's screenshot to path.
func SavePNG(p *Page, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, p.PNG, 0o644)
}

// Browser finds the Chromium executable, or says how to install it.
func Browser() (string, error) {
	for _, name := range browsers {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no headless Chromium on PATH: install Debian's package (sudo apt-get install -y chromium); .ci/run does")
}

// box is the chart's rectangle in screenshot pixels.
func box(c *Chart, scale float64) image.Rectangle {
	return image.Rect(int(c.X*scale), int(c.Y*scale), int((c.X+c.W)*scale), int((c.Y+c.H)*scale))
}

type rgb struct{ r, g, b int }

// parseRGB reads a computed colour, "rgb(r, g, b)"; translucent ones
// ("rgba(...)" with alpha < 1) are not a series colour.
func parseRGB(s string) (rgb, bool) {
	var c rgb
	if _, err := fmt.Sscanf(s, "rgb(%d, %d, %d)", &c.r, &c.g, &c.b); err != nil {
		return rgb{}, false
	}
	return c, true
}

// countColor counts the pixels in r within a small distance of want
// (anti-aliasing leaves the centre of a 2 px line at its exact colour).
func countColor(img image.Image, r image.Rectangle, want rgb) int {
	r = r.Intersect(img.Bounds())
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if abs(int(cr>>8)-want.r)+abs(int(cg>>8)-want.g)+abs(int(cb>>8)-want.b) <= 24 {
				n++
			}
		}
	}
	return n
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
