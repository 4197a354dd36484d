package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

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
	go func() { done <- w.Run(ctx, func() time.Time { return time.Now().Add(5 * time.Second) }) }()

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
		if got := len(l.due(now.Add(tt.at), tt.margin)); got != tt.want {
			t.Errorf("due(+%s, %s) = %d, want %d", tt.at, tt.margin, got, tt.want)
		}
	}
	due := l.due(now, 2*time.Second)
	l.renewed(due, now.Add(time.Hour))
	if got := len(l.due(now, 2*time.Second)); got != 0 {
		t.Errorf("renewed lease still due: %d", got)
	}
	l.remove("soon")
	l.renewed(due, now) // renewing a removed lease must not resurrect it
	if l.count() != 1 {
		t.Errorf("count %d after remove", l.count())
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

func TestSimulatedWorkStaysInBoundsAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := SimulatedWork(time.Hour, time.Hour)(ctx, types.Message{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled work returned %v", err)
	}
	if err := SimulatedWork(0, 0)(context.Background(), types.Message{}); err != nil {
		t.Fatal(err)
	}
}
