// Package events is the result analyzer's record of how video-encoder jobs
// ended: an append-only list of events, each either "processed" (the job
// finished its message) or "killed" (it was terminated mid-way), with the
// summary a person needs to see how KEDA scaled the jobs.
package events

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind says how a job ended.
type Kind string

const (
	Processed Kind = "processed" // POST /create/count
	Killed    Kind = "killed"    // POST /create/kill
)

// Limits on the client-supplied text of an event.
const (
	MaxIDLen      = 256  // JobID, MessageID (characters)
	MaxOutcomeLen = 64   // Outcome (characters)
	MaxDetailLen  = 4096 // Detail (characters)
)

// SeedTimeLayout is the timestamp of the original analyzer's lines.
const SeedTimeLayout = "2006-01-02 15:04:05"

// Event is one job outcome. Seq, Count and RecordedAt are assigned by the
// Store; everything else comes from the job and is optional (the seed's job
// sent no body at all).
type Event struct {
	Seq        int       `json:"seq"`   // 1, 2, ... over all kinds, in recording order
	Kind       Kind      `json:"kind"`  // processed or killed
	Count      int       `json:"count"` // running count within Kind: the seed's "processed count N"
	JobID      string    `json:"jobId,omitempty"`
	MessageID  string    `json:"messageId,omitempty"`
	Start      time.Time `json:"start,omitzero"` // when the job started work (RFC 3339, UTC)
	End        time.Time `json:"end,omitzero"`   // when it finished or was killed
	Outcome    string    `json:"outcome,omitempty"`
	Detail     string    `json:"detail,omitempty"`
	RecordedAt time.Time `json:"recordedAt"`
}

// SeedLine is the event as the original analyzer listed it in GET /get/count:
// "2024-01-17 05:50:45 - processed count 1" or "... - kill count 1" (UTC).
func (e Event) SeedLine() string {
	word := "processed"
	if e.Kind == Killed {
		word = "kill"
	}
	return fmt.Sprintf("%s - %s count %d", e.RecordedAt.UTC().Format(SeedTimeLayout), word, e.Count)
}

// Interval is the span the event's job ran for, used for concurrency and the
// timeline. A missing start falls back to the end, then to RecordedAt; a
// missing end falls back to RecordedAt (when the job reported), never before
// the start. An event with neither is the instant it was recorded.
func (e Event) Interval() (start, end time.Time) {
	switch {
	case !e.Start.IsZero():
		start = e.Start
	case !e.End.IsZero():
		start = e.End
	default:
		start = e.RecordedAt
	}
	switch {
	case !e.End.IsZero():
		end = e.End
	case !e.Start.IsZero() && e.RecordedAt.After(e.Start):
		end = e.RecordedAt
	default:
		end = start
	}
	return start, end
}

// ValidationError is an event a client sent that cannot be recorded.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks the client-supplied fields.
func (e Event) Validate() error {
	if e.Kind != Processed && e.Kind != Killed {
		return &ValidationError{"kind", fmt.Sprintf("%q is not %q or %q", e.Kind, Processed, Killed)}
	}
	for _, f := range []struct {
		name, value string
		max         int
		multiline   bool
	}{
		{"jobId", e.JobID, MaxIDLen, false},
		{"messageId", e.MessageID, MaxIDLen, false},
		{"outcome", e.Outcome, MaxOutcomeLen, false},
		{"detail", e.Detail, MaxDetailLen, true},
	} {
		if n := utf8.RuneCountInString(f.value); n > f.max {
			return &ValidationError{f.name, fmt.Sprintf("%d characters, at most %d allowed", n, f.max)}
		}
		if i := strings.IndexFunc(f.value, func(r rune) bool {
			return unicode.IsControl(r) && !(f.multiline && (r == '\n' || r == '\t'))
		}); i >= 0 {
			return &ValidationError{f.name, fmt.Sprintf("control character %U at byte %d", []rune(f.value[i:])[0], i)}
		}
	}
	if !e.Start.IsZero() && !e.End.IsZero() && e.End.Before(e.Start) {
		return &ValidationError{"end", fmt.Sprintf("%s is before start %s",
			e.End.UTC().Format(time.RFC3339Nano), e.Start.UTC().Format(time.RFC3339Nano))}
	}
	return nil
}
