package main

import (
	"encoding/json"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/pkg/videojob"
)

func TestMain(m *testing.M) { svctest.RunMain(m, main) }

// countingProxy forwards every request to the emulator unchanged and counts
// the SQS operations (the X-Amz-Target header of the JSON protocol), so the
// test sees the calls that really went over the wire.
func countingProxy(t *testing.T, endpoint string) (string, func(op string) int) {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	counts := map[string]int{}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		op := strings.TrimPrefix(pr.In.Header.Get("X-Amz-Target"), "AmazonSQS.")
		mu.Lock()
		counts[op]++
		mu.Unlock()
		pr.SetURL(target)
	}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL, func(op string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[op]
	}
}

func TestEnqueues25RequestsInThreeBatchCalls(t *testing.T) {
	emu := sqstest.Start(t)
	q := emu.NewQueue(t)
	proxyURL, calls := countingProxy(t, emu.Endpoint)

	p := svctest.StartProcess(t, emu.Env(map[string]string{
		"QUEUE_URL": q.URL, "NUM_MESSAGES": "25", "AWS_ENDPOINT_URL_SQS": proxyURL, "LOG_FORMAT": "text",
	}))
	if code := p.Wait(t, svctest.ProcessWait); code != 0 {
		t.Fatalf("exit %d, want 0; output:\n%s", code, p.Output)
	}
	out := p.Output.String()
	if !strings.Contains(out, "sent 25 of 25 messages in 3 SendMessageBatch calls, 0 failed, elapsed ") {
		t.Fatalf("no summary line; output:\n%s", out)
	}
	if !strings.Contains(out, `msg="send finished"`) || !strings.Contains(out, "sent=25") || !strings.Contains(out, "calls=3") {
		t.Fatalf("no structured summary; output:\n%s", out)
	}
	if n := calls("SendMessageBatch"); n != 3 {
		t.Fatalf("%d SendMessageBatch calls reached SQS, want 3 (10+10+5)", n)
	}
	if n := calls("SendMessage"); n != 0 {
		t.Fatalf("%d single SendMessage calls, want none", n)
	}
	if v, f := emu.Depth(t.Context(), t, q.URL); v != 25 || f != 0 {
		t.Fatalf("queue visible=%d inFlight=%d, want 25 and 0", v, f)
	}

	// Every body is a request the encoder accepts, each with its own id.
	client := emu.Client(t)
	ids := map[string]bool{}
	qualities := map[string]int{}
	for len(ids) < 25 {
		res, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			t.Fatalf("queue ran dry after %d distinct requests", len(ids))
		}
		for _, m := range res.Messages {
			var r struct{ ID, Video, Quality string }
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
				t.Fatalf("body %q is not JSON: %v", aws.ToString(m.Body), err)
			}
			if _, err := videojob.ParseRequest(aws.ToString(m.Body)); err != nil {
				t.Fatalf("body %q: the encoder would refuse it: %v", aws.ToString(m.Body), err)
			}
			switch {
			case r.ID == "" || ids[r.ID]:
				t.Fatalf("body %q: empty or repeated id", aws.ToString(m.Body))
			case !strings.HasPrefix(r.Video, "video-") || !strings.HasSuffix(r.Video, ".mp4"):
				t.Fatalf("body %q: unexpected video", aws.ToString(m.Body))
			}
			switch r.Quality {
			case "480p", "720p", "1080p", "4k":
			default:
				t.Fatalf("body %q: invalid quality", aws.ToString(m.Body))
			}
			ids[r.ID] = true
			qualities[r.Quality]++
		}
	}
	if len(qualities) != 4 {
		t.Fatalf("qualities %v, want all four", qualities)
	}
}

func TestUnsentMessagesExitOne(t *testing.T) {
	emu := sqstest.Start(t)
	missing := emu.Endpoint + "/" + sqstest.AccountID + "/does-not-exist"
	p := svctest.StartProcess(t, emu.Env(map[string]string{"QUEUE_URL": missing, "NUM_MESSAGES": "25", "LOG_FORMAT": "text"}))
	if code := p.Wait(t, svctest.ProcessWait); code != 1 {
		t.Fatalf("exit %d, want 1; output:\n%s", code, p.Output)
	}
	out := p.Output.String()
	for _, want := range []string{
		"sent 0 of 25 messages in 3 SendMessageBatch calls, 25 failed",
		"25 of 25 messages not sent",
		"failed=25",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
