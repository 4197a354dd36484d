// Package worker is the SQS consumer of the sqsworker sample (seed 004): a
// receive loop, a bounded pool, batched deletes, visibility extension for
// slow work, and an explicit "release what you cannot finish" path.
//
// Delivery is at least once. A message is deleted only after its work
// succeeded; anything else (failure, shutdown deadline, crash) leaves it to
// come back: at once when we release it, after its visibility timeout when
// the process died. Processing must therefore be idempotent, and duplicates
// are expected (the churn test counts them).
//
// A message stays covered, its visibility extended, from its receive until
// its delete has landed or its release was sent: a finished message waiting
// for a slow delete does not reappear meanwhile. Every call to SQS is bounded
// (callTimeout), so a hung call ends and is tried again while the lease
// still has time left.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
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
	busy    atomic.Int64  // messages being worked (finished ones wait in deletes)
	idle    chan struct{} // signalled when busy drops to 0
	deletes chan finished // finished messages, to delete
	leases  *leases       // every message held, worked or waiting for its delete

	unreleased atomic.Int64 // messages a shutdown release failed to hand back
	undeleted  int          // finished messages whose delete never landed (set by deleteLoop)

	lastErr atomic.Pointer[error] // nil after a successful receive
}

// New returns a worker; call Run.
func New(cfg Config, api sqsx.API, process Processor, metrics Metrics, log *slog.Logger) *Worker {
	w := &Worker{
		cfg: cfg, api: api, process: process, metrics: metrics, log: log,
		slots:   make(chan struct{}, cfg.Concurrency),
		idle:    make(chan struct{}, 1),
		deletes: make(chan finished, cfg.Concurrency+sqsx.MaxBatch),
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
//
// The error is non-nil when messages were not handed back: a release at
// shutdown failed (those return after their visibility timeout) or the last
// deletes did not land (those are delivered again).
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

	stopLog := context.AfterFunc(ctx, func() {
		w.log.Info("stop requested: no new receive; an open long poll runs out and what it brings is released")
	})
	defer stopLog()
	var work sync.WaitGroup
	w.receiveLoop(ctx, workCtx, finalCtx, &work)

	w.log.Info("stopped receiving; draining", "in_flight", w.busy.Load(), "budget", budget)
	work.Wait() // handlers end on their own or when workCtx runs out
	if workCtx.Err() != nil {
		w.log.Warn("drain deadline reached; unfinished messages were released")
	}
	// Deletes first, then the extender: finished messages stay covered
	// until their delete has landed.
	close(w.deletes)
	<-deleterDone
	close(stopExtender)
	<-extenderDone
	var lost []error
	if n := w.unreleased.Load(); n > 0 {
		lost = append(lost, fmt.Errorf("%d unfinished messages not released: they return only after their visibility timeout", n))
	}
	if w.undeleted > 0 {
		lost = append(lost, fmt.Errorf("%d finished messages not deleted: they will be delivered again", w.undeleted))
	}
	if err := errors.Join(lost...); err != nil {
		w.log.Error("worker stopped; messages were not handed back", "err", err)
		return fmt.Errorf("worker: %w", err)
	}
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

// finished is a message worked successfully, waiting for its delete.
type finished struct{ id, handle string }

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
	w.metrics.InFlight(context.WithoutCancel(ctx), -1)
	switch {
	case err == nil:
		w.metrics.Processed(context.WithoutCancel(ctx), time.Since(start))
		log.Debug("processed", "duration", time.Since(start), "body", aws.ToString(m.Body))
		// The lease stays: the extender covers the message until deleteLoop
		// has deleted it.
		w.deletes <- finished{id: id, handle: aws.ToString(m.ReceiptHandle)}
	case ctx.Err() != nil:
		// Shutdown deadline: hand the message back now.
		if rerr := w.release(finalCtx, m, w.leases.remove(id)); rerr != nil {
			w.unreleased.Add(1)
			log.Error("release of unfinished message failed; it returns after its visibility timeout", "err", rerr)
			return
		}
		log.Info("released unfinished message")
	default:
		w.metrics.Failed(context.WithoutCancel(ctx))
		log.Warn("processing failed; releasing for redelivery", "err", err)
		if rerr := w.release(finalCtx, m, w.leases.remove(id)); rerr != nil {
			log.Warn("release failed; message returns after its visibility timeout", "err", rerr)
		}
	}
}

// receiveGather bounds the wait for slots about to free before a receive.
const receiveGather = 5 * time.Millisecond

// releaseTimeout bounds one release call (also within the shutdown budget).
const releaseTimeout = 5 * time.Second

// callTimeout bounds one delete or visibility-extension call. Extensions are
// tried every VisibilityTimeout/8 once a lease has half its time left, so a
// call cut after VisibilityTimeout/8 leaves room for another try before the
// lease runs out; 5s is already far beyond a healthy SQS call.
func (w *Worker) callTimeout() time.Duration {
	return min(max(w.cfg.VisibilityTimeout/8, 250*time.Millisecond), 5*time.Second)
}

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
		failed := len(ms)
		if be := (*sqsx.BatchError)(nil); errors.As(err, &be) {
			failed = len(be.Failed)
		}
		w.unreleased.Add(int64(failed))
		w.log.Error("release after SIGTERM failed; messages return after their visibility timeout", "count", failed, "err", err)
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
func (w *Worker) release(ctx context.Context, m types.Message, extending <-chan struct{}) error {
	if extending != nil {
		<-extending
	}
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	_, err := sqsx.ChangeVisibility(ctx, w.api, w.cfg.QueueURL, []string{aws.ToString(m.ReceiptHandle)}, 0)
	return err
}

// deleteLoop deletes finished messages in batches of up to 10. A partial
// batch goes when the pool is idle, after DeleteFlush at the latest, and
// everything when the channel closes. A lease ends when its delete has
// landed; a delete that failed is tried again after DeleteFlush, its message
// still covered by the extender, and at the end a few times more.
func (w *Worker) deleteLoop(ctx context.Context) {
	var batch []finished
	timer := time.NewTimer(w.cfg.DeleteFlush)
	defer timer.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		batch = w.deleteBatch(ctx, batch)
		if len(batch) > 0 {
			timer.Reset(w.cfg.DeleteFlush)
		}
	}
	for {
		select {
		case f, ok := <-w.deletes:
			if !ok {
				for try := 0; len(batch) > 0 && try < finalDeleteTries; try++ {
					if try > 0 && wait.Sleep(ctx, w.callTimeout()) != nil {
						break
					}
					batch = w.deleteBatch(ctx, batch)
				}
				w.undeleted = len(batch)
				return
			}
			if len(batch) == 0 {
				timer.Reset(w.cfg.DeleteFlush)
			}
			batch = append(batch, f)
			if len(batch) >= sqsx.MaxBatch || w.idleNow() {
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

// finalDeleteTries is how often the last deletes are tried at shutdown.
const finalDeleteTries = 3

// deleteBatch deletes batch with one bounded call per 10 and returns what
// is worth trying again. Deleted messages, and those SQS refused for good
// (a stale receipt handle: someone else holds the message now), lose their
// lease.
func (w *Worker) deleteBatch(ctx context.Context, batch []finished) []finished {
	var retry []finished
	for lo := 0; lo < len(batch); lo += sqsx.MaxBatch {
		chunk := batch[lo:min(lo+sqsx.MaxBatch, len(batch))]
		handles := make([]string, len(chunk))
		for i, f := range chunk {
			handles[i] = f.handle
		}
		cctx, cancel := context.WithTimeout(ctx, w.callTimeout())
		_, err := sqsx.Delete(cctx, w.api, w.cfg.QueueURL, handles)
		cancel()
		// Delete names every entry it did not delete in a BatchError.
		var failed map[string]string
		var again map[string]bool
		if be := (*sqsx.BatchError)(nil); errors.As(err, &be) {
			failed, again = be.Failed, be.Retry
		}
		refused := 0
		for i, f := range chunk {
			id := strconv.Itoa(i)
			if again[id] {
				retry = append(retry, f)
				continue // still covered
			}
			if _, ok := failed[id]; ok {
				refused++
			}
			w.leases.remove(f.id)
		}
		if err != nil {
			w.log.Warn("delete failed; finished messages stay invisible and the delete is tried again",
				"retrying", len(retry), "refused", refused, "err", err)
		}
	}
	return retry
}

// extendLoop pushes the visibility timeout of messages held (being worked or
// waiting for their delete) when they get within half a timeout of
// expiring, in batches, each call bounded by callTimeout.
func (w *Worker) extendLoop(ctx context.Context, stop <-chan struct{}) {
	tick := time.NewTicker(max(w.cfg.VisibilityTimeout/8, 100*time.Millisecond))
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
			cctx, cancel := context.WithTimeout(ctx, w.callTimeout())
			_, err := sqsx.ChangeVisibility(cctx, w.api, w.cfg.QueueURL, handles, int32(w.cfg.VisibilityTimeout/time.Second))
			cancel()
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
