package heartbeat

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// virtualClock runs Run without real time: sleep advances now, and once the
// work would be over it cancels the heartbeat as the job does.
type virtualClock struct {
	now    time.Duration
	work   time.Duration
	cancel context.CancelFunc
}

func (c *virtualClock) sleep(ctx context.Context, d time.Duration) error {
	if c.now+d >= c.work {
		c.now = c.work
		c.cancel()
		return ctx.Err()
	}
	c.now += d
	return nil
}

func TestRunFollowsSchedule(t *testing.T) {
	s := time.Second
	tests := []struct {
		name             string
		visibility, work time.Duration
		want             []time.Duration
	}{
		{"seed: 60s encode, 600s visibility: never extends", 600 * s, 60 * s, nil},
		{"work ends exactly at half the timeout: never extends", 600 * s, 300 * s, nil},
		{"just over half: one extension at 300s", 600 * s, 301 * s, []time.Duration{300 * s}},
		{"4k at 4×60s with 60s visibility: every 30s", 60 * s, 240 * s, []time.Duration{30 * s, 60 * s, 90 * s, 120 * s, 150 * s, 180 * s, 210 * s}},
		{"shortest visibility 1s: every 500ms", 1 * s, 1600 * time.Millisecond, []time.Duration{500 * time.Millisecond, s, 1500 * time.Millisecond}},
		{"no work", 600 * s, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Schedule(tt.visibility, tt.work); !slices.Equal(got, tt.want) {
				t.Fatalf("Schedule(%v, %v) = %v, want %v", tt.visibility, tt.work, got, tt.want)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clock := &virtualClock{work: tt.work, cancel: cancel}
			var at []time.Duration
			h := Heartbeat{
				Visibility: tt.visibility,
				Extend: func(_ context.Context, v time.Duration) error {
					if v != tt.visibility {
						t.Errorf("extended to %v, want %v", v, tt.visibility)
					}
					at = append(at, clock.now)
					return nil
				},
				sleep: clock.sleep,
			}
			h.Run(ctx)
			if !slices.Equal(at, tt.want) {
				t.Fatalf("Run extended at %v, want %v", at, tt.want)
			}
			// Every extension lands while the previous deadline is still
			// ahead: the message never becomes visible mid-work.
			deadline := tt.visibility
			for _, a := range at {
				if a >= deadline {
					t.Fatalf("extension at %v after the visibility ran out at %v", a, deadline)
				}
				deadline = a + tt.visibility
			}
			if tt.work >= deadline {
				t.Fatalf("work ends at %v, after the visibility ran out at %v", tt.work, deadline)
			}
		})
	}
}

func TestRunReportsFailedExtensionsAndCarriesOn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := &virtualClock{work: 2 * time.Second, cancel: cancel}
	calls, reported := 0, 0
	h := Heartbeat{
		Visibility: time.Second,
		Extend: func(context.Context, time.Duration) error {
			calls++
			return errors.New("throttled")
		},
		OnError: func(error) { reported++ },
		sleep:   clock.sleep,
	}
	h.Run(ctx)
	if calls != 3 || reported != 3 {
		t.Fatalf("calls=%d reported=%d, want 3 and 3 (at 0.5s, 1s, 1.5s)", calls, reported)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Heartbeat{Visibility: time.Hour, Extend: func(context.Context, time.Duration) error {
			t.Error("extended after cancel")
			return nil
		}}.Run(ctx)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}
