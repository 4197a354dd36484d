package faultproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPassesUntilFailedAndAfter(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "real "+r.URL.Path)
	}))
	defer svc.Close()
	p, err := Start(svc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") {
		t.Fatalf("proxy on %s, want 127.0.0.1", p.URL)
	}
	if code, body := get(t, p.URL+"/api/v1/query", nil); code != 200 || body != "real /api/v1/query" {
		t.Fatalf("before the fault: %d %q", code, body)
	}
	p.Set(Unavailable("Prometheus"))
	if code, _ := get(t, p.URL+"/api/v1/query", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("during the fault: %d, want 503", code)
	}
	p.Set(nil)
	if code, body := get(t, p.URL+"/x", nil); code != 200 || body != "real /x" {
		t.Fatalf("after the fault: %d %q", code, body)
	}
	if passed, failed := p.Counts(); passed != 2 || failed != 1 {
		t.Fatalf("counts %d passed, %d failed; want 2, 1", passed, failed)
	}
}

func TestFailsOnlyTheMatchingOperationOneInEvery(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer svc.Close()
	p, err := Start(svc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f := Unavailable("SQS")
	f.Match, f.Every = AWSOperation("GetQueueAttributes"), 3
	p.Set(f)
	sqs := func(op string) int {
		code, _ := get(t, p.URL+"/", map[string]string{"X-Amz-Target": "AmazonSQS." + op})
		return code
	}
	var codes []int
	for range 6 {
		codes = append(codes, sqs("GetQueueAttributes"))
	}
	want := []int{200, 200, 503, 200, 200, 503}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("GetQueueAttributes answered %v, want %v (one in 3 failed)", codes, want)
		}
	}
	if c := sqs("ReceiveMessage"); c != 200 {
		t.Fatalf("ReceiveMessage %d, want it passed", c)
	}
	// The CBOR protocol names the operation in the path.
	f2 := Unavailable("CloudWatch")
	f2.Match = AWSOperation("GetMetricData")
	p.Set(f2)
	if code, _ := get(t, p.URL+"/service/GraniteServiceVersion20100801/operation/GetMetricData", nil); code != 503 {
		t.Fatalf("GetMetricData %d, want 503", code)
	}
	if code, _ := get(t, p.URL+"/service/GraniteServiceVersion20100801/operation/PutMetricData", nil); code != 200 {
		t.Fatalf("PutMetricData %d, want it passed", code)
	}
}
