// Package wait has the two helpers the samples' simulated work needs: a
// sleep that a context cancels, so workers stop promptly, and a uniform
// random duration, the seeds' Random.Shared.Next(min, max).
package wait

import (
	"context"
	"math/rand/v2"
	"time"
)

// Uniform returns a duration uniform in [lo, hi], both ends included; lo
// when hi ≤ lo (the services' config rejects that; a caller that does not
// gets a fixed delay rather than a panic).
func Uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo+1)
}

// Sleep waits d, or until ctx is done, in which case it returns ctx.Err().
// A d of zero or less returns at once (ctx.Err(), usually nil).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
