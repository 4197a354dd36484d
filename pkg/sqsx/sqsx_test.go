package sqsx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
)

type callLog struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *callLog) count(op string) { c.mu.Lock(); c.n[op]++; c.mu.Unlock() }

func TestBatchHelpersAgainstTheEmulator(t *testing.T) {
	emu := sqstest.Start(t)
	q := emu.NewQueue(t)
	calls := &callLog{n: map[string]int{}}
	ctx := context.Background()
	client, err := NewClient(ctx, emu.Getenv(nil), CountCalls(calls.count))
	if err != nil {
		t.Fatal(err)
	}

	bodies := make([]string, 25)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("body-%d", i)
	}
	res, err := Send(ctx, client, q.URL, bodies, 4)
	if err != nil || res.Sent() != 25 || res.Calls != 3 {
		t.Fatalf("Send: sent %d in %d calls, err %v", res.Sent(), res.Calls, err)
	}
	if v, f := emu.Depth(ctx, t, q.URL); v != 25 || f != 0 {
		t.Fatalf("depth %d/%d after send", v, f)
	}

	var handles []string
	for len(handles) < 25 {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: MaxBatch, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			handles = append(handles, aws.ToString(m.ReceiptHandle))
		}
	}
	// Release the first 5, delete the other 20.
	if n, err := ChangeVisibility(ctx, client, q.URL, handles[:5], 0); err != nil || n != 1 {
		t.Fatalf("ChangeVisibility: %d calls, %v", n, err)
	}
	if n, err := Delete(ctx, client, q.URL, handles[5:]); err != nil || n != 2 {
		t.Fatalf("Delete: %d calls, %v", n, err)
	}
	if v, f := emu.Depth(ctx, t, q.URL); v != 5 || f != 0 {
		t.Fatalf("depth %d/%d, want 5 released / 0 in flight", v, f)
	}
	// A stale handle (already released) is refused for visibility changes.
	_, err = ChangeVisibility(ctx, client, q.URL, handles[:1], 30)
	var be *BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Retry["0"] {
		t.Fatalf("stale handle: %v (retry %v); want one failed entry, not worth retrying", err, be)
	}
	// A call that fails as a whole (here: given up before it went) may
	// succeed later: every entry is marked for retry.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Delete(gone, client, q.URL, handles[:2])
	if !errors.As(err, &be) || len(be.Failed) != 2 || !be.Retry["0"] || !be.Retry["1"] {
		t.Fatalf("failed call: %v (retry %v); want both entries marked for retry", err, be)
	}

	calls.mu.Lock()
	defer calls.mu.Unlock()
	want := map[string]int{"SendMessageBatch": 3, "DeleteMessageBatch": 3 /* with the cancelled one */, "ChangeMessageVisibilityBatch": 2}
	for op, n := range want {
		if calls.n[op] != n {
			t.Errorf("%s counted %d, want %d (all: %v)", op, calls.n[op], n, calls.n)
		}
	}
}

func TestSendReportsEveryBodyWhenTheQueueIsMissing(t *testing.T) {
	emu := sqstest.Start(t)
	client, err := NewClient(context.Background(), emu.Getenv(nil))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Send(context.Background(), client, emu.Endpoint+"/000000000000/missing", []string{"a", "b"}, 1)
	if err == nil || len(res.Failed) != 2 || res.Sent() != 0 {
		t.Fatalf("got %+v, %v", res, err)
	}
}

func TestChunksCoverEveryIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 25, 100} {
		seen := 0
		for _, c := range chunks(n) {
			if c[1]-c[0] > MaxBatch || c[1] <= c[0] || c[0] != seen {
				t.Fatalf("n=%d: bad chunk %v", n, c)
			}
			seen = c[1]
		}
		if seen != n {
			t.Fatalf("n=%d: covered %d", n, seen)
		}
	}
}

// One bad entry (SQS refuses a NUL character, a sender fault) fails alone:
// the others are sent, the bad one is reported by index, not retried.
func TestSendReportsAFailedEntryAndSendsTheRest(t *testing.T) {
	emu := sqstest.Start(t)
	q := emu.NewQueue(t)
	calls := &callLog{n: map[string]int{}}
	client, err := NewClient(context.Background(), emu.Getenv(nil), CountCalls(calls.count))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Send(context.Background(), client, q.URL, []string{"ok-0", "bad\x00body", "ok-2"}, 1)
	if err == nil || res.Sent() != 2 || len(res.Failed) != 1 || res.Failed[1] == "" || res.MessageIDs[1] != "" {
		t.Fatalf("got %+v, %v; want entry 1 failed, 0 and 2 sent", res, err)
	}
	if !strings.Contains(res.Failed[1], "InvalidMessageContents") {
		t.Errorf("failure reason %q", res.Failed[1])
	}
	if calls.n["SendMessageBatch"] != 1 {
		t.Errorf("%d SendMessageBatch calls: a sender fault must not be retried", calls.n["SendMessageBatch"])
	}
	if v, _ := emu.Depth(context.Background(), t, q.URL); v != 2 {
		t.Errorf("queue holds %d, want 2", v)
	}
}
