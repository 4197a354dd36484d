// Package heartbeat keeps a received SQS message invisible for as long as
// the job works on it.
//
// A message received with visibility timeout V comes back to the queue V
// after the receive unless the job deletes it or extends the timeout. The
// heartbeat extends it to V again (ChangeMessageVisibility) every V/2 while
// the work runs, so each extension lands while half the timeout is still
// left: an encode of any length keeps its message, and an encode shorter
// than V/2 never calls SQS at all. The interval starts after each extension
// returns, so a slow call delays the next one instead of piling calls up;
// that is safe while one call takes less than V/2.
package heartbeat

import (
	"context"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/wait"
)

// Interval is the time between extensions for a visibility timeout: half.
func Interval(visibility time.Duration) time.Duration { return visibility / 2 }

// Heartbeat extends one message's visibility until its context ends.
type Heartbeat struct {
	// Visibility is the timeout the message was received with, and the
	// timeout each extension sets again.
	Visibility time.Duration
	// Extend sets the message's visibility timeout to visibility from now.
	Extend func(ctx context.Context, visibility time.Duration) error
	// OnError, if set, is told about a failed extension; the heartbeat
	// carries on and tries again one interval later.
	OnError func(error)

	// sleep waits d or until ctx ends (then it returns ctx.Err()); tests
	// replace it with a virtual clock.
	sleep func(ctx context.Context, d time.Duration) error
}

// Run extends the visibility every Interval until ctx is done. Cancel ctx
// when the work ends, and wait for Run to return before deleting or releasing
// the message, so no extension races the delete.
func (h Heartbeat) Run(ctx context.Context) {
	sleep := h.sleep
	if sleep == nil {
		sleep = wait.Sleep
	}
	every := Interval(h.Visibility)
	for {
		if err := sleep(ctx, every); err != nil {
			return
		}
		if err := h.Extend(ctx, h.Visibility); err != nil && ctx.Err() == nil && h.OnError != nil {
			h.OnError(err)
		}
	}
}

// Schedule returns the offsets from the receive at which Run extends the
// visibility of a message whose work takes work (extension calls taking no
// time): every Interval strictly before the work ends. It documents the
// schedule and is what the tests check Run against.
func Schedule(visibility, work time.Duration) []time.Duration {
	every := Interval(visibility)
	if every <= 0 {
		return nil
	}
	var at []time.Duration
	for t := every; t < work; t += every {
		at = append(at, t)
	}
	return at
}
