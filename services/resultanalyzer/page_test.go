package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

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
