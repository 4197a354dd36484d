// Package worker is the SQS consumer of the sqsworker sample (seed 004): a
// receive loop, a bounded pool, batched deletes, visibility extension for
// slow work, and an explicit "release what you cannot finish" path.
//
// Delivery is at least once. A message is deleted only after its work
// succeeded; anything else (failure, shutdown deadline, crash) leaves it to
// come back: at once when we release it, after its visibility timeout when
// the process died. Processing must therefore be idempotent, and duplicates
// are expected (the churn test counts them).
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keda-eks-samples/workloads/pkg/sqsx"
	"github.com/keda-eks-samples/workloads/pkg/wait"
)

// Config tunes the worker.
type Config struct {
	QueueURL          string
	Concurrency       int           // messages worked at once
	WaitTime          time.Duration // long poll per receive (whole seconds, ≤ 20s)
	VisibilityTimeout time.Duration // asked for on receive; extended while work runs
	DeleteFlush       time.Duration // longest a finished message waits for a full delete batch
	MaxBackoff        time.Duration // cap of the retry delay after SQS errors
}

// Processor does the work for one message. It must honour ctx: when the
// shutdown deadline passes, ctx is cancelled and the message is released.
type Processor func(ctx context.Context, m types.Message) error

// Metrics receives what the worker does; all methods must be safe for
// concurrent use. Nil-safe use is the caller's job (pass a no-op).
type Metrics interface {
	Processed(ctx context.Context, d time.Duration)
	Failed(ctx context.Context)
	InFlight(ctx context.Context, delta int64)
}

// Worker consumes one queue.
type Worker struct {
	cfg     Config
	api     sqsx.API
	process Processor
	metrics Metrics
	log     *slog.Logger

	slots   chan struct{} // one token per message being worked
	busy    atomic.Int64  // messages received and not yet deleted-or-released
	idle    chan struct{} // signalled when busy drops to 0
	deletes chan string   // receipt handles of finished messages
	leases  *leases

	lastErr atomic.Pointer[error] // nil after a successful receive
}

// New returns a worker; call Run.
func New(cfg Config, api sqsx.API, process Processor, metrics Metrics, log *slog.Logger) *Worker {
	w := &Worker{
		cfg: cfg, api: api, process: process, metrics: metrics, log: log,
		slots:   make(chan struct{}, cfg.Concurrency),
		idle:    make(chan struct{}, 1),
		deletes: make(chan string, cfg.Concurrency+sqsx.MaxBatch),
		leases:  newLeases(),
	}
	never := error(nil)
	w.lastErr.Store(&never)
	return w
}

// Healthy reports the last receive's error: readiness fails while SQS is
// unreachable, and recovers with the first successful receive.
func (w *Worker) Healthy(context.Context) error {
	if err := *w.lastErr.Load(); err != nil {
		return fmt.Errorf("last ReceiveMessage failed: %w", err)
	}
	return nil
}

// Run consumes until ctx is cancelled (SIGTERM), then, within budget
// counted from that moment (SHUTDOWN_TIMEOUT):
//
//  1. stops receiving at once: no new receive starts, and whatever the open
//     long poll still brings is released unworked;
//  2. lets in-flight work finish until the budget minus a release reserve;
//  3. cancels what is still running and releases those messages
//     (visibility 0) so another consumer takes them now, not after the
//     visibility timeout;
//  4. flushes the pending deletes, and returns by the end of the budget.
func (w *Worker) Run(ctx context.Context, budget time.Duration) error {
	// workCtx bounds the work (and the last open receive), finalCtx the
	// releases and deletes; neither ends at SIGTERM itself.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	finalCtx, cancelFinal := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFinal()
	runDone := make(chan struct{})
	defer close(runDone)
	go shutdownClock(ctx, runDone, budget-ReleaseReserve(budget), cancelWork, budget, cancelFinal)

	deleterDone, extenderDone := make(chan struct{}), make(chan struct{})
	go func() { w.deleteLoop(finalCtx); close(deleterDone) }()
	stopExtender := make(chan struct{})
	go func() { w.extendLoop(finalCtx, stopExtender); close(extenderDone) }()

	var work sync.WaitGroup
	w.receiveLoop(ctx, workCtx, finalCtx, &work)

	w.log.Info("stopped receiving; draining", "in_flight", w.leases.count(), "budget", budget)
	work.Wait() // handlers end on their own or when workCtx runs out
	if workCtx.Err() != nil {
		w.log.Warn("drain deadline reached; unfinished messages were released")
	}
	close(stopExtender)
	<-extenderDone
	close(w.deletes)
	<-deleterDone
	w.log.Info("worker stopped")
	return nil
}

// ReleaseReserve is the part of the shutdown budget kept for releasing
// unfinished messages and flushing deletes after the drain deadline.
func ReleaseReserve(budget time.Duration) time.Duration { return min(3*time.Second, budget/4) }

// shutdownClock starts counting when ctx ends (SIGTERM) and calls
// drainOver after drain, budgetOver after budget, unless done comes first.
func shutdownClock(ctx context.Context, done <-chan struct{}, drain time.Duration, drainOver func(), budget time.Duration, budgetOver func()) {
	select {
	case <-ctx.Done():
	case <-done:
		return
	}
	t1, t2 := time.AfterFunc(drain, drainOver), time.AfterFunc(budget, budgetOver)
	<-done
	t1.Stop()
	t2.Stop()
}

func (w *Worker) receiveLoop(ctx, workCtx, finalCtx context.Context, work *sync.WaitGroup) {
	backoff := time.Duration(0)
	for {
		// Take one slot before asking SQS, and as many more as are free: we
		// never hold more messages invisible than we can work on.
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := w.gatherSlots(1, min(w.cfg.Concurrency, sqsx.MaxBatch))
		// The receive itself is not cancelled by SIGTERM: a long poll cut
		// on the client side can still be handed messages by SQS, which then
		// stay invisible, processed by nobody, for a whole visibility
		// timeout. Instead it runs out (≤ SQS_WAIT_TIME) and whatever it
		// brings after SIGTERM is released at once. Only if the drain
		// deadline comes first is it cut (workCtx).
		rctx, cancel := context.WithTimeout(workCtx, w.cfg.WaitTime+receiveSlack)
		out, err := w.api.ReceiveMessage(rctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(w.cfg.QueueURL),
			MaxNumberOfMessages:         int32(n),
			WaitTimeSeconds:             int32(w.cfg.WaitTime / time.Second),
			VisibilityTimeout:           int32(w.cfg.VisibilityTimeout / time.Second),
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		cancel()
		var got []types.Message
		if out != nil {
			got = out.Messages
		}
		for range n - len(got) { // give back the slots we did not use
			<-w.slots
		}
		if ctx.Err() != nil { // SIGTERM arrived during the poll
			w.releaseAll(finalCtx, got)
			for range got {
				<-w.slots
			}
			return
		}
		if err != nil {
			w.lastErr.Store(&err)
			backoff = nextBackoff(backoff, w.cfg.MaxBackoff)
			w.log.Warn("receive failed; backing off", "err", err, "backoff", backoff)
			if wait.Sleep(ctx, backoff) != nil {
				return
			}
			continue
		}
		none := error(nil)
		w.lastErr.Store(&none)
		backoff = 0
		for _, m := range got {
			w.busy.Add(1)
			w.leases.add(m, w.cfg.VisibilityTimeout)
			w.metrics.InFlight(ctx, 1)
			work.Go(func() { w.handle(workCtx, finalCtx, m) })
		}
	}
}

// gatherSlots takes up to want slots in all, holding have already. While
// work is in flight it waits up to receiveGather for slots about to free, so
// a busy worker asks for full batches of 10 rather than many small ones.
func (w *Worker) gatherSlots(have, want int) int {
	var timeout <-chan time.Time
	for have < want {
		select {
		case w.slots <- struct{}{}:
			have++
			continue
		default:
		}
		if w.busy.Load() == 0 {
			return have // nothing in flight: no slot will free up
		}
		if timeout == nil {
			t := time.NewTimer(receiveGather)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case w.slots <- struct{}{}:
			have++
		case <-timeout:
			return have
		}
	}
	return have
}

// idleNow reports that no message is being worked and no delete is queued.
// Handlers queue their delete before calling done, so whichever of the two
// the delete loop sees last, it sees the pool idle then.
func (w *Worker) idleNow() bool { return w.busy.Load() == 0 && len(w.deletes) == 0 }

// done ends a message's stay in the pool: its slot is free and, when it was
// the last one, a pending partial delete batch can go.
func (w *Worker) done() {
	<-w.slots
	if w.busy.Add(-1) == 0 {
		select {
		case w.idle <- struct{}{}:
		default:
		}
	}
}

func (w *Worker) handle(ctx, finalCtx context.Context, m types.Message) {
	defer w.done()
	id := aws.ToString(m.MessageId)
	log := w.log.With("message_id", id, "receive_count", m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	start := time.Now()
	log.Debug("processing")
	err := w.process(ctx, m)
	extending := w.leases.remove(id)
	w.metrics.InFlight(context.WithoutCancel(ctx), -1)
	switch {
	case err == nil:
		w.metrics.Processed(context.WithoutCancel(ctx), time.Since(start))
		log.Debug("processed", "duration", time.Since(start), "body", aws.ToString(m.Body))
		w.deletes <- aws.ToString(m.ReceiptHandle)
	case ctx.Err() != nil:
		// Shutdown deadline: hand the message back now.
		log.Info("released unfinished message")
		w.release(finalCtx, m, extending)
	default:
		w.metrics.Failed(context.WithoutCancel(ctx))
		log.Warn("processing failed; releasing for redelivery", "err", err)
		w.release(finalCtx, m, extending)
	}
}

// receiveGather bounds the wait for slots about to free before a receive.
const receiveGather = 5 * time.Millisecond

// releaseTimeout bounds one release call (also within the shutdown budget).
const releaseTimeout = 5 * time.Second

// receiveSlack is how much longer than its long poll a receive may take.
const receiveSlack = 10 * time.Second

// releaseAll hands back messages received after SIGTERM, unworked.
func (w *Worker) releaseAll(ctx context.Context, ms []types.Message) {
	if len(ms) == 0 {
		return
	}
	handles := make([]string, len(ms))
	for i, m := range ms {
		handles[i] = aws.ToString(m.ReceiptHandle)
	}
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	if _, err := sqsx.ChangeVisibility(ctx, w.api, w.cfg.QueueURL, handles, 0); err != nil {
		w.log.Warn("release after SIGTERM failed; messages return after their visibility timeout", "count", len(ms), "err", err)
		return
	}
	w.log.Info("released messages received during shutdown", "count", len(ms))
}

// release makes m visible again at once; its receive count has already gone
// up, so a message that always fails reaches the queue's dead-letter queue
// after maxReceiveCount tries instead of looping.
//
// extending, when not nil, is closed once a visibility extension of m that
// was under way has finished: waiting for it keeps that extension from
// landing after the release and hiding m again for a whole timeout.
func (w *Worker) release(ctx context.Context, m types.Message, extending <-chan struct{}) {
	if extending != nil {
		<-extending
	}
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	if _, err := sqsx.ChangeVisibility(ctx, w.api, w.cfg.QueueURL, []string{aws.ToString(m.ReceiptHandle)}, 0); err != nil {
		w.log.Warn("release failed; message returns after its visibility timeout", "message_id", aws.ToString(m.MessageId), "err", err)
	}
}

// deleteLoop deletes finished messages in batches of up to 10. A partial
// batch goes when the pool is idle, after DeleteFlush at the latest, and
// everything when the channel closes.
func (w *Worker) deleteLoop(ctx context.Context) {
	var batch []string
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := sqsx.Delete(ctx, w.api, w.cfg.QueueURL, batch); err != nil {
			// Not deleted means delivered again later: at-least-once holds.
			w.log.Warn("delete failed; messages will be redelivered", "count", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	timer := time.NewTimer(w.cfg.DeleteFlush)
	defer timer.Stop()
	for {
		select {
		case h, ok := <-w.deletes:
			if !ok {
				flush()
				return
			}
			if len(batch) == 0 {
				timer.Reset(w.cfg.DeleteFlush)
			}
			batch = append(batch, h)
			if len(batch) == sqsx.MaxBatch || w.idleNow() {
				flush()
			}
		case <-w.idle:
			// Nothing else is being worked, so no more deletes are coming
			// soon: send the partial batch now rather than after DeleteFlush.
			if w.idleNow() {
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// extendLoop pushes the visibility timeout of messages still being worked
// when they get within half a timeout of expiring, in batches.
func (w *Worker) extendLoop(ctx context.Context, stop <-chan struct{}) {
	tick := time.NewTicker(max(w.cfg.VisibilityTimeout/4, 250*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			due := w.leases.due(now, w.cfg.VisibilityTimeout/2)
			if len(due) == 0 {
				continue
			}
			handles := make([]string, len(due))
			for i, l := range due {
				handles[i] = l.handle
			}
			_, err := sqsx.ChangeVisibility(ctx, w.api, w.cfg.QueueURL, handles, int32(w.cfg.VisibilityTimeout/time.Second))
			w.leases.finish(due, now.Add(w.cfg.VisibilityTimeout), err == nil)
			if err != nil {
				w.log.Warn("extending visibility failed", "count", len(due), "err", err)
				continue
			}
			w.log.Debug("extended visibility", "count", len(due), "by", w.cfg.VisibilityTimeout)
		}
	}
}

// SimulatedWork returns the sample's processor: wait a uniform random time in
// [lo, hi] (the seed's Random.Shared.Next(1000, 2500) ms), honouring ctx.
func SimulatedWork(lo, hi time.Duration) Processor {
	return func(ctx context.Context, _ types.Message) error {
		return wait.Sleep(ctx, wait.Uniform(lo, hi))
	}
}

// nextBackoff doubles from 100ms up to limit, with full jitter.
func nextBackoff(prev, limit time.Duration) time.Duration {
	next := min(max(2*prev, 100*time.Millisecond), limit)
	return next/2 + rand.N(next/2+1)
}
