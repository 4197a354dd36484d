// Package wait has the one helper the standard library lacks for workers
// that must stop promptly: a sleep that a context cancels.
package wait

import (
	"context"
	"time"
)

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
