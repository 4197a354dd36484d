package faultproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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

// Faults side by side: a hold that applies twice and then ends by itself,
// a failure of another operation; calls counted by operation, held and
// failed ones included; Close releases what is still held.
func TestHoldsTimesAndFaultsSideBySide(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "real")
	}))
	defer svc.Close()
	p, err := Start(svc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	release := make(chan struct{})
	p.Add(&Fault{Name: "deletes held", Match: AWSOperation("DeleteMessageBatch"), Times: 2, Hold: release})
	fail := Unavailable("receives")
	fail.Match = AWSOperation("ReceiveMessage")
	p.Add(fail)
	call := func(op string) <-chan int {
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, p.URL+"/", strings.NewReader("{}"))
			req.Header.Set("X-Amz-Target", "AmazonSQS."+op)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		return done
	}
	held1, held2 := call("DeleteMessageBatch"), call("DeleteMessageBatch")
	if code := <-call("ReceiveMessage"); code != http.StatusServiceUnavailable {
		t.Fatalf("ReceiveMessage %d, want 503 beside the hold", code)
	}
	// Both deletes have reached the proxy and wait; the third passes.
	for p.Calls("DeleteMessageBatch") < 2 {
		select {
		case code := <-held1:
			t.Fatalf("a held delete answered %d", code)
		case code := <-held2:
			t.Fatalf("a held delete answered %d", code)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if code := <-call("DeleteMessageBatch"); code != 200 {
		t.Fatalf("the third delete %d, want it passed (Times 2)", code)
	}
	close(release)
	if a, b := <-held1, <-held2; a != 200 || b != 200 {
		t.Fatalf("released deletes answered %d, %d; want them passed", a, b)
	}
	p.Remove(fail)
	if code := <-call("ReceiveMessage"); code != 200 {
		t.Fatalf("ReceiveMessage %d after Remove, want it passed", code)
	}
	if d, r := p.Calls("DeleteMessageBatch"), p.Calls("ReceiveMessage"); d != 3 || r != 2 {
		t.Fatalf("calls: %d deletes, %d receives; want 3, 2", d, r)
	}
	// A hold still in place when the proxy closes lets its request go.
	p.Add(&Fault{Name: "held forever", Hold: make(chan struct{})})
	last := call("GetQueueAttributes")
	for p.Calls("GetQueueAttributes") < 1 {
		time.Sleep(10 * time.Millisecond)
	}
	p.Close()
	<-last
}
