package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/services/resultanalyzer/internal/events"
)

func TestMain(m *testing.M) { svctest.RunMain(m, main) }

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	return svctest.Do(t, http.MethodPost, url, "application/json", strings.NewReader(body))
}

var seedLine = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} - processed count (\d+)$`)

func TestConcurrentCreateCountRecordsEveryCountOnce(t *testing.T) {
	s := svctest.Start(t, run, svctest.Env(t, nil))
	const n = 100
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			// Exactly the seed's call: POST, no body, no content type.
			resp, err := http.Post(s.URL+"/create/count", "", nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()

	var lines []string
	if err := svctest.GetJSON(s.URL+"/get/count", &lines); err != nil {
		t.Fatal(err)
	}
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	seen := map[int]bool{}
	for i, l := range lines {
		m := seedLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d %q does not match %s", i, l, seedLine)
		}
		c, _ := strconv.Atoi(m[1])
		if c != i+1 || seen[c] { // recording order is count order
			t.Errorf("line %d has count %d", i, c)
		}
		seen[c] = true
	}
}

func TestRoutesAnswerLikeTheSeed(t *testing.T) {
	s := svctest.Start(t, run, svctest.Env(t, nil))
	tests := []struct {
		method, path, body string
		status             int
		want               string // substring
	}{
		{"GET", "/get/count", "", 200, "[]"},
		{"POST", "/create/count", "", 200, `"kind":"processed","count":1,"recordedAt":"`},
		{"POST", "/create/count", "  \n", 200, `"seq":2,"kind":"processed","count":2,`},
		{"POST", "/create/kill", "", 200, `"seq":3,"kind":"killed","count":1,`},
		{"POST", "/create/kill", "null", 200, `"seq":4,"kind":"killed","count":2,`},
		{"POST", "/create/count", `{"JOBID":"enc-1","unknownField":true}`, 200, `"count":3,"jobId":"enc-1","recordedAt"`},
		{"GET", "/get/count", "", 200, " - kill count 2\",\""},
		{"GET", "/events", "", 200, `"seq":5`},
		{"GET", "/summary", "", 200, `"processed":3,"killed":2,"total":5`},
		{"GET", "/", "", 200, `<rect class="bar killed"`},
		{"GET", "/healthz", "", 200, `"ok"`},
		{"GET", "/readyz", "", 200, `"ready"`},
	}
	for _, tt := range tests {
		status, body := svctest.Do(t, tt.method, s.URL+tt.path, "", strings.NewReader(tt.body))
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s %q: got %d %q, want %d containing %q", tt.method, tt.path, tt.body, status, body, tt.status, tt.want)
		}
	}
}

func TestBadInputIsRejectedAndRecordsNothing(t *testing.T) {
	s := svctest.Start(t, run, svctest.Env(t, map[string]string{"MAX_BODY_BYTES": "512"}))
	if status, body := post(t, s.URL+"/create/count", `{"jobId":"good"}`); status != 200 {
		t.Fatalf("valid event: %d %s", status, body)
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // substring of the JSON error
	}{
		{"malformed JSON", "POST", "/create/count", `{"jobId":`, 400, "malformed JSON"},
		{"wrong type", "POST", "/create/kill", `{"jobId": 7}`, 400, "malformed JSON"},
		{"array", "POST", "/create/count", `[]`, 400, "malformed JSON"},
		{"two values", "POST", "/create/count", `{} {}`, 400, "unexpected data"},
		{"bad time", "POST", "/create/count", `{"start":"yesterday"}`, 400, "malformed JSON"},
		{"body over the cap", "POST", "/create/count", `{"detail":"` + strings.Repeat("x", 600) + `"}`, 413, "larger than 512 bytes"},
		{"blank body over the cap", "POST", "/create/kill", strings.Repeat(" ", 600), 413, "larger than 512 bytes"},
		{"end before start", "POST", "/create/count", `{"start":"2024-01-17T05:50:45Z","end":"2024-01-17T05:50:44Z"}`, 400, "end: "},
		{"job id too long", "POST", "/create/kill", `{"jobId":"` + strings.Repeat("j", 257) + `"}`, 400, "jobId: 257 characters, at most 256"},
		{"control character", "POST", "/create/count", `{"messageId":"a\u0007b"}`, 400, "messageId: control character"},
		{"outcome too long", "POST", "/create/count", `{"outcome":"` + strings.Repeat("o", 65) + `"}`, 400, "outcome: 65 characters"},
		{"unknown route", "GET", "/nope", "", 404, "no route for GET /nope"},
		{"GET on a POST route", "GET", "/create/count", "", 405, "method GET not allowed on /create/count"},
		{"POST on a GET route", "POST", "/get/count", "", 405, "method POST not allowed on /get/count"},
		{"DELETE events", "DELETE", "/events", "", 405, "method DELETE not allowed on /events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.URL+tt.path, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e map[string]string // exactly {"error": "..."}
			decErr := json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tt.status || decErr != nil || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %s (%v), want %d JSON", resp.StatusCode, resp.Header.Get("Content-Type"), decErr, tt.status)
			}
			if len(e) != 1 || !strings.Contains(e["error"], tt.want) {
				t.Errorf("body %v, want an error containing %q", e, tt.want)
			}
		})
	}
	var evs []events.Event
	if err := svctest.GetJSON(s.URL+"/events", &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].JobID != "good" {
		t.Errorf("events after bad input: %+v", evs)
	}
	var lines []string
	if err := svctest.GetJSON(s.URL+"/get/count", &lines); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 {
		t.Errorf("/get/count after bad input: %q", lines)
	}
}

func TestSummaryReportsDuplicatesAndPeakConcurrency(t *testing.T) {
	s := svctest.Start(t, run, svctest.Env(t, nil))
	t0 := time.Date(2024, 1, 17, 5, 50, 45, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	report := func(path, job, msg string, start, end int) {
		body := fmt.Sprintf(`{"jobId":%q,"messageId":%q,"start":%q,"end":%q}`, job, msg,
			at(start).Format(time.RFC3339), at(end).Format(time.RFC3339))
		if status, resp := post(t, s.URL+path, body); status != 200 {
			t.Fatalf("%s %s: %d %s", path, body, status, resp)
		}
	}
	report("/create/count", "enc-c", "m1", 5, 12)
	report("/create/count", "enc-a", "m1", 0, 10)
	report("/create/kill", "enc-d", "m3", 11, 13)
	report("/create/count", "enc-b", "m2", 2, 8)
	report("/create/kill", "enc-e", "m2", 20, 30) // killed: not a duplicate of m2
	report("/create/count", "enc-f", "m1", 40, 50)

	var got events.Summary
	if err := svctest.GetJSON(s.URL+"/summary", &got); err != nil {
		t.Fatal(err)
	}
	want := events.Summary{
		Processed: 4, Killed: 2, Total: 6,
		Duplicates:      []events.Duplicate{{MessageID: "m1", Count: 3}},
		PeakConcurrency: 3, PeakAt: at(5), First: at(0), Last: at(50),
		Concurrency: []events.Point{
			{At: at(0), Running: 1}, {At: at(2), Running: 2}, {At: at(5), Running: 3}, {At: at(8), Running: 2},
			{At: at(10), Running: 1}, {At: at(11), Running: 2}, {At: at(12), Running: 1}, {At: at(13), Running: 0},
			{At: at(20), Running: 1}, {At: at(30), Running: 0}, {At: at(40), Running: 1}, {At: at(50), Running: 0},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary\n got %+v\nwant %+v", got, want)
	}
	_, page := svctest.Get(t, s.URL+"/")
	if n := strings.Count(page, `<rect class="bar `); n != 6 || !strings.Contains(page, "<b>3</b>peak concurrent jobs") {
		t.Errorf("page has %d bars or lacks the peak", n)
	}
}

// startReady starts the service as a process and waits for /readyz.
func startReady(t *testing.T, env map[string]string) (*svctest.Process, string) {
	t.Helper()
	url := "http://127.0.0.1:" + env["PORT"]
	p := svctest.StartProcess(t, env)
	p.WaitReady(t, url)
	return p, url
}

func stop(t *testing.T, p *svctest.Process) {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0; output:\n%s", code, p.Output)
	}
}

func TestEventsSurviveARestartWithDataFile(t *testing.T) {
	data := filepath.Join(t.TempDir(), "state", "events.jsonl") // parent dir does not exist yet
	p, url := startReady(t, svctest.Env(t, map[string]string{"DATA_FILE": data}))

	reports := []struct{ path, body string }{
		{"/create/count", `{"jobId":"enc-1","messageId":"m-1","start":"2024-01-17T05:50:00Z","end":"2024-01-17T05:51:00.123456789Z","outcome":"encoded","detail":"720p"}`},
		{"/create/kill", `{"JobId":"enc-2","MessageID":"m-2","Start":"2024-01-17T11:20:30+05:30","outcome":"sigterm","detail":"released: visibility 0"}`},
		{"/create/count", ``},
		{"/create/count", `{"jobId":"enc-3","messageId":"m-1","start":"2024-01-17T05:52:00Z","end":"2024-01-17T05:53:00Z"}`},
		{"/create/kill", ``},
	}
	var acked []events.Event
	for _, r := range reports {
		status, body := post(t, url+r.path, r.body)
		var e events.Event
		if status != 200 || json.Unmarshal([]byte(body), &e) != nil {
			t.Fatalf("POST %s %s: %d %s", r.path, r.body, status, body)
		}
		acked = append(acked, e)
	}
	if acked[1].Start.Format(time.RFC3339) != "2024-01-17T05:50:30Z" {
		t.Errorf("start not stored in UTC: %v", acked[1].Start)
	}
	_, eventsBefore := svctest.Get(t, url+"/events")
	_, linesBefore := svctest.Get(t, url+"/get/count")
	_, summaryBefore := svctest.Get(t, url+"/summary")
	stop(t, p)

	if st, err := os.Stat(data); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("DATA_FILE: %v, mode %v", err, st.Mode().Perm())
	}

	p, url = startReady(t, svctest.Env(t, map[string]string{"DATA_FILE": data}))
	_, eventsAfter := svctest.Get(t, url+"/events")
	_, linesAfter := svctest.Get(t, url+"/get/count")
	_, summaryAfter := svctest.Get(t, url+"/summary")
	if eventsAfter != eventsBefore || linesAfter != linesBefore || summaryAfter != summaryBefore {
		t.Fatalf("state changed across the restart:\n%s\n%s\n---\n%s\n%s", eventsBefore, linesBefore, eventsAfter, linesAfter)
	}
	var replayed []events.Event
	if err := json.Unmarshal([]byte(eventsAfter), &replayed); err != nil || !reflect.DeepEqual(replayed, acked) {
		t.Fatalf("replayed %+v (%v)\nacknowledged %+v", replayed, err, acked)
	}

	// Counting continues where it stopped.
	status, body := post(t, url+"/create/count", "")
	var next events.Event
	if status != 200 || json.Unmarshal([]byte(body), &next) != nil || next.Seq != 6 || next.Count != 4 {
		t.Fatalf("next event after restart: %d %s, want seq 6, processed count 4", status, body)
	}
	var lines []string
	if err := svctest.GetJSON(url+"/get/count", &lines); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 6 || !strings.HasSuffix(lines[5], " - processed count 4") {
		t.Errorf("/get/count after restart: %q", lines)
	}
	stop(t, p)
}

func TestUnusableDataFileExitsOne(t *testing.T) {
	dir := t.TempDir()
	damaged := filepath.Join(dir, "damaged.jsonl")
	line := `{"seq":1,"kind":"processed","count":1,"recordedAt":"2024-01-17T05:50:45Z"}` + "\n"
	if err := os.WriteFile(damaged, []byte("{oops\n"+line), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, want string }{
		{"a directory", dir, "is a directory"},
		{"damaged before the last line", damaged, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := svctest.StartProcess(t, svctest.Env(t, map[string]string{"DATA_FILE": tt.path}))
			if code := p.Wait(t, 20*time.Second); code != 1 {
				t.Fatalf("exit %d, want 1; output:\n%s", code, p.Output)
			}
			if out := p.Output.String(); !strings.Contains(out, "DATA_FILE: ") || !strings.Contains(out, tt.want) {
				t.Errorf("output does not explain: %s", out)
			}
		})
	}
}
