package events

import (
	"cmp"
	"slices"
	"time"
)

// Summary is what a person wants to know about a run of the sample.
type Summary struct {
	Processed int `json:"processed"`
	Killed    int `json:"killed"`
	Total     int `json:"total"`
	// Duplicates are message ids that more than one processed event carried:
	// SQS delivers at least once, so a message whose job outlived its
	// visibility timeout (or whose delete failed) is processed again.
	Duplicates []Duplicate `json:"duplicates"`
	// PeakConcurrency is the largest number of job intervals that overlap
	// (closed intervals: touching ends count as overlapping); PeakAt is the
	// first instant it was reached.
	PeakConcurrency int       `json:"peakConcurrency"`
	PeakAt          time.Time `json:"peakAt,omitzero"`
	// First and Last bound every interval (see Event.Interval).
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Concurrency is the number of running jobs over time, as steps.
	Concurrency []Point `json:"concurrency"`
}

// Duplicate is a message id processed more than once.
type Duplicate struct {
	MessageID string `json:"messageId"`
	Count     int    `json:"count"`
}

// Point is one step of the concurrency series: Running jobs from At until the
// next point. Two points can share an instant: the value at that instant
// (jobs starting there are counted) and then the value right after it (jobs
// ending there are not).
type Point struct {
	At      time.Time `json:"at"`
	Running int       `json:"running"`
}

// Summarize computes the summary of evs (in any order).
func Summarize(evs []Event) Summary {
	s := Summary{Total: len(evs), Duplicates: []Duplicate{}, Concurrency: []Point{}}
	seen := map[string]int{}
	type edge struct {
		at    time.Time
		delta int // +1 start, -1 end
	}
	edges := make([]edge, 0, 2*len(evs))
	for _, e := range evs {
		switch e.Kind {
		case Processed:
			s.Processed++
			if e.MessageID != "" {
				seen[e.MessageID]++
			}
		case Killed:
			s.Killed++
		}
		start, end := e.Interval()
		edges = append(edges, edge{start, +1}, edge{end, -1})
		if s.First.IsZero() || start.Before(s.First) {
			s.First = start
		}
		if end.After(s.Last) {
			s.Last = end
		}
	}
	for id, n := range seen {
		if n > 1 {
			s.Duplicates = append(s.Duplicates, Duplicate{id, n})
		}
	}
	slices.SortFunc(s.Duplicates, func(a, b Duplicate) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.MessageID, b.MessageID))
	})

	// Sweep the interval edges in time order, starts before ends at the same
	// instant (closed intervals), one point per group of equal edges.
	slices.SortStableFunc(edges, func(a, b edge) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(b.delta, a.delta))
	})
	running := 0
	for i, e := range edges {
		running += e.delta
		if i+1 < len(edges) && edges[i+1].at.Equal(e.at) && edges[i+1].delta == e.delta {
			continue
		}
		s.Concurrency = append(s.Concurrency, Point{e.at, running})
		if running > s.PeakConcurrency {
			s.PeakConcurrency, s.PeakAt = running, e.at
		}
	}
	return s
}
