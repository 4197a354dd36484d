package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/sqsx"
	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
)

type counts struct{ processed, failed, inFlight atomic.Int64 }

func (c *counts) Processed(context.Context, time.Duration) { c.processed.Add(1) }
func (c *counts) Failed(context.Context)                   { c.failed.Add(1) }
func (c *counts) InFlight(_ context.Context, d int64)      { c.inFlight.Add(d) }

func TestPoisonMessageEndsInTheDeadLetterQueue(t *testing.T) {
	emu := sqstest.Start(t)
	q := emu.NewQueue(t, sqstest.WithMaxReceiveCount(2))
	client := emu.Client(t)
	if _, err := sqsx.Send(context.Background(), client, q.URL, []string{"ok-1", "poison", "ok-2"}, 1); err != nil {
		t.Fatal(err)
	}
	process := func(_ context.Context, m types.Message) error {
		if aws.ToString(m.Body) == "poison" {
			return errors.New("cannot process")
		}
		return nil
	}
	c := &counts{}
	w := New(Config{QueueURL: q.URL, Concurrency: 2, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second,
		DeleteFlush: 10 * time.Millisecond, MaxBackoff: time.Second}, client, process, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, 5*time.Second) }()

	emu.WaitDepth(t, q.DLQURL, func(v, f int) bool { return v == 1 }, 30*time.Second)
	emu.WaitDepth(t, q.URL, sqstest.Empty, 10*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.processed.Load() != 2 || c.failed.Load() != 2 || c.inFlight.Load() != 0 {
		t.Fatalf("processed %d failed %d in flight %d; want 2, 2 (one per allowed receive), 0",
			c.processed.Load(), c.failed.Load(), c.inFlight.Load())
	}
}

func TestLeasesComeDueWithinTheMargin(t *testing.T) {
	l := newLeases()
	now := time.Now()
	for _, m := range []struct {
		id      string
		timeout time.Duration
	}{{"soon", time.Second}, {"later", time.Minute}} {
		l.add(types.Message{MessageId: aws.String(m.id), ReceiptHandle: aws.String("h-" + m.id)}, m.timeout)
	}
	tests := []struct {
		at     time.Duration
		margin time.Duration
		want   int
	}{
		{0, 500 * time.Millisecond, 0},
		{0, 2 * time.Second, 1},
		{50 * time.Second, 15 * time.Second, 2},
	}
	for _, tt := range tests {
		due := l.due(now.Add(tt.at), tt.margin)
		if len(due) != tt.want {
			t.Errorf("due(+%s, %s) = %d, want %d", tt.at, tt.margin, len(due), tt.want)
		}
		l.finish(due, time.Time{}, false) // failed extension: expiries unchanged
	}
	due := l.due(now, 2*time.Second)
	l.finish(due, now.Add(time.Hour), true)
	if got := len(l.due(now, 2*time.Second)); got != 0 {
		t.Errorf("renewed lease still due: %d", got)
	}
	if l.remove("soon") != nil {
		t.Error("no extension under way, yet remove returned a channel to wait on")
	}
	if l.count() != 1 {
		t.Errorf("count %d after remove", l.count())
	}
}

// A release must not race an extension of the same message: remove hands
// out the extension's channel, which closes only when the extension ends.
func TestRemoveWaitsForAnExtensionUnderWay(t *testing.T) {
	l := newLeases()
	l.add(types.Message{MessageId: aws.String("m"), ReceiptHandle: aws.String("h")}, time.Second)
	due := l.due(time.Now(), time.Minute)
	wait := l.remove("m")
	if wait == nil {
		t.Fatal("extension under way, but remove gave nothing to wait on")
	}
	select {
	case <-wait:
		t.Fatal("released before the extension finished")
	default:
	}
	l.finish(due, time.Now().Add(time.Hour), false)
	select {
	case <-wait:
	default:
		t.Fatal("finish did not let the release go on")
	}
	if l.count() != 0 {
		t.Fatalf("finish resurrected a removed lease")
	}
}

func TestBackoffGrowsWithJitterUpToTheCap(t *testing.T) {
	var d time.Duration
	for range 20 {
		d = nextBackoff(d, 2*time.Second)
		if d <= 0 || d > 2*time.Second {
			t.Fatalf("backoff %s out of (0, 2s]", d)
		}
	}
	if d < time.Second {
		t.Errorf("after 20 failures backoff is %s, want at least half the cap", d)
	}
}

// TestSimulatedWorkDrawsItsDelayFromTheRange fails for a constant delay at
// either end: of 40 draws in [0, 400ms] some wait 200ms or more, and some
// finish before 200ms. A fair set of draws has one under 100ms (all 40 miss
// with probability 0.75^40 ≈ 1e-5), which leaves 100ms of slack for a busy
// machine.
func TestSimulatedWorkDrawsItsDelayFromTheRange(t *testing.T) {
	const n, hi = 40, 400 * time.Millisecond
	work := SimulatedWork(0, hi)
	took := make(chan time.Duration, n)
	for range n {
		go func() {
			start := time.Now()
			if err := work(context.Background(), types.Message{}); err != nil {
				t.Error(err)
			}
			took <- time.Since(start)
		}()
	}
	shortest, longest := hi, time.Duration(0)
	for range n {
		d := <-took
		shortest, longest = min(shortest, d), max(longest, d)
	}
	if longest < hi/2 || shortest >= hi/2 {
		t.Errorf("%d waits spanned [%s, %s], want some under and some over %s", n, shortest, longest, hi/2)
	}
}

func TestSimulatedWorkStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := SimulatedWork(time.Hour, time.Hour)(ctx, types.Message{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled work returned %v", err)
	}
	if err := SimulatedWork(0, 0)(context.Background(), types.Message{}); err != nil {
		t.Fatal(err)
	}
}

// proxied returns a client that reaches emu through a fault-injecting proxy.
func proxied(t *testing.T, emu *sqstest.Emulator) (*sqstest.Proxy, sqsx.API) {
	t.Helper()
	p := emu.Proxy(t)
	client, err := sqsx.NewClient(context.Background(), p.Getenv(nil))
	if err != nil {
		t.Fatal(err)
	}
	return p, client
}

// startWorker runs w until stop (or the end of the test) cancels its
// context; stop returns Run's error.
func startWorker(t *testing.T, w *Worker, budget time.Duration) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, budget) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30s")
			return nil
		}
	})
	t.Cleanup(func() { _ = stop() })
	return stop
}

// A finished message waits for its delete under a lease that is still
// extended: SQS hangs every DeleteMessageBatch for longer than three
// visibility timeouts, yet no other consumer gets the message, each delete
// call is cut and tried again, and the first one SQS answers deletes it.
func TestFinishedMessageStaysCoveredUntilItsDeleteLands(t *testing.T) {
	emu := sqstest.Start(t)
	q := emu.NewQueue(t)
	p, client := proxied(t, emu)
	p.Hold("DeleteMessageBatch", 0)
	c := &counts{}
	w := New(Config{QueueURL: q.URL, Concurrency: 1, WaitTime: time.Second, VisibilityTimeout: 2 * time.Second,
		DeleteFlush: 50 * time.Millisecond, MaxBackoff: time.Second}, client,
		func(context.Context, types.Message) error { return nil }, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	startWorker(t, w, 5*time.Second)
	if _, err := sqsx.Send(context.Background(), emu.Client(t), q.URL, []string{"one"}, 1); err != nil {
		t.Fatal(err)
	}
	p.WaitCalls(t, "DeleteMessageBatch", 1, 10*time.Second)
	// Three extensions take longer than the 2s visibility timeout.
	emu.NeverReceived(t, q.URL, func() bool { return p.Calls("ChangeMessageVisibilityBatch") >= 3 }, 30*time.Second)
	if n := p.Calls("DeleteMessageBatch"); n < 2 {
		t.Fatalf("%d delete calls while SQS hung: the hung call was not cut and tried again", n)
	}
	p.Heal("DeleteMessageBatch")
	emu.WaitDepth(t, q.URL, sqstest.Empty, 10*time.Second)
	if c.processed.Load() != 1 {
		t.Fatalf("processed %d times, want once", c.processed.Load())
	}
}

// A visibility extension that hangs is cut in time for the next one to land
// before the lease runs out: the message being worked never reappears.
func TestHungExtensionIsCutAndTriedAgainInTime(t *testing.T) {
	emu := sqstest.Start(t)
	q := emu.NewQueue(t)
	p, client := proxied(t, emu)
	p.Hold("ChangeMessageVisibilityBatch", 1)
	finish := make(chan struct{})
	w := New(Config{QueueURL: q.URL, Concurrency: 1, WaitTime: time.Second, VisibilityTimeout: 4 * time.Second,
		DeleteFlush: 50 * time.Millisecond, MaxBackoff: time.Second}, client,
		func(ctx context.Context, _ types.Message) error {
			select {
			case <-finish:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, &counts{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	startWorker(t, w, 5*time.Second)
	if _, err := sqsx.Send(context.Background(), emu.Client(t), q.URL, []string{"slow"}, 1); err != nil {
		t.Fatal(err)
	}
	// The first extension hangs; the two after it must keep the message.
	// The worker holds it first; only then may no other consumer see it.
	emu.WaitDepth(t, q.URL, func(v, f int) bool { return v == 0 && f == 1 }, 10*time.Second)
	emu.NeverReceived(t, q.URL, func() bool { return p.Calls("ChangeMessageVisibilityBatch") >= 3 }, 30*time.Second)
	close(finish)
	emu.WaitDepth(t, q.URL, sqstest.Empty, 10*time.Second)
}

// When SQS refuses the releases at shutdown and the last deletes, Run says
// so in its error and its log: those messages were not handed back.
func TestRunFailsWhenMessagesAreNotHandedBack(t *testing.T) {
	emu := sqstest.Start(t)
	q := emu.NewQueue(t, sqstest.WithVisibilityTimeout(time.Hour))
	p, client := proxied(t, emu)
	if _, err := sqsx.Send(context.Background(), emu.Client(t), q.URL, []string{"slow-1", "slow-2", "quick"}, 1); err != nil {
		t.Fatal(err)
	}
	p.Fail("ChangeMessageVisibilityBatch")
	p.Fail("DeleteMessageBatch")
	var log localproc.SyncBuffer
	w := New(Config{QueueURL: q.URL, Concurrency: 3, WaitTime: time.Second, VisibilityTimeout: time.Hour,
		DeleteFlush: 50 * time.Millisecond, MaxBackoff: time.Second}, client,
		func(ctx context.Context, m types.Message) error {
			if aws.ToString(m.Body) == "quick" {
				return nil
			}
			<-ctx.Done()
			return ctx.Err()
		}, &counts{}, slog.New(slog.NewTextHandler(&log, nil)))
	stop := startWorker(t, w, 2*time.Second)
	emu.WaitDepth(t, q.URL, func(v, f int) bool { return v == 0 && f == 3 }, 20*time.Second)
	p.WaitCalls(t, "DeleteMessageBatch", 1, 10*time.Second)
	if err := stop(); err == nil || !strings.Contains(err.Error(), "2 unfinished messages not released") ||
		!strings.Contains(err.Error(), "1 finished messages not deleted") {
		t.Fatalf("Run returned %v; want it to name 2 unreleased and 1 undeleted messages", err)
	}
	if !strings.Contains(log.String(), "messages were not handed back") {
		t.Fatalf("nothing logged about messages not handed back:\n%s", log.String())
	}
}
