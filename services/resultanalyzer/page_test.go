package main

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/testutil/browsertest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// TestPageLinksReachTheRoutesTheyName follows every link of the served page
// the way a browser resolves it: fragments must name an element of the page,
// the rest must answer 200 from the service.
func TestPageLinksReachTheRoutesTheyName(t *testing.T) {
	s := svctest.Start(t, run, svctest.Env(t, nil))
	for _, r := range []struct{ path, body string }{
		{"/create/kill", `{"jobId":"job-1","messageId":"m1"}`},
		{"/create/count", `{"jobId":"job-2","messageId":"m1"}`},
	} {
		if status, body := post(t, s.URL+r.path, r.body); status != http.StatusOK {
			t.Fatalf("POST %s: %d %s", r.path, status, body)
		}
	}
	for _, query := range []string{"", "?refresh=5"} {
		pageURL, err := url.Parse(s.URL + "/" + query)
		if err != nil {
			t.Fatal(err)
		}
		status, page := svctest.Get(t, pageURL.String())
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d", pageURL, status)
		}
		links := regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(page, -1)
		if len(links) < 8 {
			t.Fatalf("%d links on the page", len(links))
		}
		for _, m := range links {
			href := m[1]
			if frag, ok := strings.CutPrefix(href, "#"); ok {
				if !strings.Contains(page, `id="`+frag+`"`) {
					t.Errorf("%s: no element for %q", query, href)
				}
				continue
			}
			ref, err := url.Parse(href)
			if err != nil {
				t.Fatal(err)
			}
			target := pageURL.ResolveReference(ref).String()
			if status, body := svctest.Get(t, target); status != http.StatusOK {
				t.Errorf("%s: link %q → %s: %d %s", query, href, target, status, body)
			}
		}
	}
}

// TestPageChartsPaintInChromium opens the served page in headless Chromium
// as a user does: the running-jobs line and the bars of processed and
// killed runs paint inside their charts.
func TestPageChartsPaintInChromium(t *testing.T) {
	s := svctest.Start(t, run, svctest.Env(t, nil))
	start := time.Now().UTC().Add(-time.Minute)
	for i, r := range []struct{ path, job, msg string }{
		{"/create/count", "job-1", "m1"},
		{"/create/kill", "job-2", "m2"},
		{"/create/count", "job-3", "m2"},
		{"/create/count", "job-4", "m3"},
	} {
		at := start.Add(time.Duration(i) * 10 * time.Second)
		body := fmt.Sprintf(`{"jobId":%q,"messageId":%q,"start":%q,"end":%q}`, r.job, r.msg,
			at.Format(time.RFC3339), at.Add(25*time.Second).Format(time.RFC3339))
		if status, body := post(t, s.URL+r.path, body); status != http.StatusOK {
			t.Fatalf("POST %s: %d %s", r.path, status, body)
		}
	}
	p := browsertest.Check(t, s.URL+"/", "resultanalyzer", 1100)
	painted := map[string]bool{}
	for _, c := range p.Charts {
		for _, series := range c.Series {
			painted[series.Name] = painted[series.Name] || series.Pixels >= browsertest.MinPixels
		}
	}
	for _, want := range []string{"running jobs", "processed", "killed"} {
		if !painted[want] {
			t.Errorf("the page paints no %q series (charts %+v)", want, p.Charts)
		}
	}
	if want := "Result analyzer: 3 processed, 1 killed"; p.Title != want {
		t.Errorf("title %q, want %q", p.Title, want)
	}
}
