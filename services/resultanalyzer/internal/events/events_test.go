package events

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 17, 5, 50, 45, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fixedClock returns t0, t0+1s, t0+2s, ... on successive calls.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	n := 0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return at(float64(n - 1))
	}
}

func memStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open("", discard())
	if err != nil {
		t.Fatal(err)
	}
	s.now = fixedClock()
	return s
}

func TestSeedLineMatchesTheOriginalFormat(t *testing.T) {
	tests := []struct {
		e    Event
		want string
	}{
		{Event{Kind: Processed, Count: 1, RecordedAt: t0}, "2024-01-17 05:50:45 - processed count 1"},
		{Event{Kind: Killed, Count: 3, RecordedAt: t0.Add(999 * time.Millisecond)}, "2024-01-17 05:50:45 - kill count 3"},
		{Event{Kind: Processed, Count: 10, RecordedAt: t0.In(time.FixedZone("IST", 5*3600+1800))}, "2024-01-17 05:50:45 - processed count 10"},
	}
	for _, tt := range tests {
		if got := tt.e.SeedLine(); got != tt.want {
			t.Errorf("SeedLine() = %q, want %q", got, tt.want)
		}
	}
}

func TestRecordCountsEachKindSeparately(t *testing.T) {
	tests := []struct {
		name   string
		kinds  []Kind
		counts []int
	}{
		{"none", nil, nil},
		{"processed only", []Kind{Processed, Processed, Processed}, []int{1, 2, 3}},
		{"killed only", []Kind{Killed, Killed}, []int{1, 2}},
		{"mixed", []Kind{Processed, Killed, Processed, Killed, Killed, Processed}, []int{1, 1, 2, 2, 3, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memStore(t)
			for i, k := range tt.kinds {
				e, err := s.Record(context.Background(), Event{Kind: k})
				if err != nil {
					t.Fatal(err)
				}
				if e.Seq != i+1 || e.Count != tt.counts[i] || !e.RecordedAt.Equal(at(float64(i))) {
					t.Errorf("event %d: seq %d count %d at %v, want seq %d count %d", i, e.Seq, e.Count, e.RecordedAt, i+1, tt.counts[i])
				}
			}
			sum := s.Summary()
			if sum.Total != len(tt.kinds) || sum.Processed+sum.Killed != sum.Total || s.Len() != len(tt.kinds) {
				t.Errorf("summary %+v, len %d, want total %d", sum, s.Len(), len(tt.kinds))
			}
		})
	}
}

func TestRecordIsSafeForConcurrentUse(t *testing.T) {
	s := memStore(t)
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if _, err := s.Record(context.Background(), Event{Kind: Processed}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, e := range s.List() {
		if e.Seq != i+1 || e.Count != i+1 {
			t.Fatalf("event %d has seq %d count %d", i, e.Seq, e.Count)
		}
	}
}

func TestRecordRejectsInvalidEventsAndStoresNothing(t *testing.T) {
	long := strings.Repeat("é", MaxIDLen+1)
	tests := []struct {
		name  string
		e     Event
		field string
	}{
		{"unknown kind", Event{Kind: "lost"}, "kind"},
		{"end before start", Event{Kind: Processed, Start: at(10), End: at(9)}, "end"},
		{"job id too long", Event{Kind: Processed, JobID: long}, "jobId"},
		{"message id too long", Event{Kind: Killed, MessageID: long}, "messageId"},
		{"outcome too long", Event{Kind: Killed, Outcome: strings.Repeat("x", MaxOutcomeLen+1)}, "outcome"},
		{"detail too long", Event{Kind: Killed, Detail: strings.Repeat("x", MaxDetailLen+1)}, "detail"},
		{"control character in job id", Event{Kind: Processed, JobID: "a\nb"}, "jobId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memStore(t)
			_, err := s.Record(context.Background(), tt.e)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("err = %v, want a ValidationError on %s", err, tt.field)
			}
			if s.Len() != 0 {
				t.Errorf("stored %d events", s.Len())
			}
		})
	}
	ok := Event{Kind: Processed, JobID: strings.Repeat("é", MaxIDLen), Start: at(1), End: at(1), Detail: "line 1\nline 2\tend"}
	if err := ok.Validate(); err != nil {
		t.Errorf("limits themselves rejected: %v", err)
	}
}

func TestSummaryFindsDuplicateMessageIDs(t *testing.T) {
	tests := []struct {
		name string
		evs  []Event
		want []Duplicate
	}{
		{"none", nil, []Duplicate{}},
		{"all distinct", []Event{{Kind: Processed, MessageID: "a"}, {Kind: Processed, MessageID: "b"}}, []Duplicate{}},
		{"ids missing are not duplicates", []Event{{Kind: Processed}, {Kind: Processed}}, []Duplicate{}},
		{"killed then processed is not a duplicate",
			[]Event{{Kind: Killed, MessageID: "a"}, {Kind: Processed, MessageID: "a"}}, []Duplicate{}},
		{"redelivered twice and once", []Event{
			{Kind: Processed, MessageID: "b"}, {Kind: Processed, MessageID: "a"}, {Kind: Processed, MessageID: "b"},
			{Kind: Processed, MessageID: "c"}, {Kind: Processed, MessageID: "b"}, {Kind: Processed, MessageID: "a"},
			{Kind: Killed, MessageID: "c"},
		}, []Duplicate{{"b", 3}, {"a", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarize(tt.evs).Duplicates; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("duplicates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSummaryComputesPeakConcurrencyAndSeries(t *testing.T) {
	span := func(k Kind, s, e float64) Event { return Event{Kind: k, Start: at(s), End: at(e), RecordedAt: at(e)} }
	tests := []struct {
		name     string
		evs      []Event
		peak     int
		peakAt   time.Time
		first    time.Time
		last     time.Time
		series   []Point
		proc, kl int
	}{
		{name: "none", series: []Point{}},
		{name: "one instant event (no start: recordedAt both ends)",
			evs:  []Event{{Kind: Processed, RecordedAt: at(3)}},
			peak: 1, peakAt: at(3), first: at(3), last: at(3),
			series: []Point{{at(3), 1}, {at(3), 0}}, proc: 1},
		{name: "sequential jobs",
			evs:  []Event{span(Processed, 0, 1), span(Processed, 2, 3)},
			peak: 1, peakAt: at(0), first: at(0), last: at(3),
			series: []Point{{at(0), 1}, {at(1), 0}, {at(2), 1}, {at(3), 0}}, proc: 2},
		{name: "touching ends overlap (closed intervals)",
			evs:  []Event{span(Processed, 0, 1), span(Killed, 1, 2)},
			peak: 2, peakAt: at(1), first: at(0), last: at(2),
			series: []Point{{at(0), 1}, {at(1), 2}, {at(1), 1}, {at(2), 0}}, proc: 1, kl: 1},
		{name: "scale out and in, given out of order",
			evs: []Event{
				span(Processed, 5, 12), span(Processed, 0, 10), span(Killed, 11, 13),
				span(Processed, 2, 8), span(Killed, 20, 30),
			},
			peak: 3, peakAt: at(5), first: at(0), last: at(30),
			series: []Point{
				{at(0), 1}, {at(2), 2}, {at(5), 3}, {at(8), 2}, {at(10), 1}, {at(11), 2},
				{at(12), 1}, {at(13), 0}, {at(20), 1}, {at(30), 0},
			}, proc: 3, kl: 2},
		{name: "same start for many jobs is one step",
			evs:  []Event{span(Processed, 0, 5), span(Processed, 0, 5), span(Processed, 0, 4)},
			peak: 3, peakAt: at(0), first: at(0), last: at(5),
			series: []Point{{at(0), 3}, {at(4), 2}, {at(5), 0}}, proc: 3},
		{name: "start only ends when recorded; end only is an instant",
			evs: []Event{
				{Kind: Processed, Start: at(0), RecordedAt: at(10)},
				{Kind: Killed, End: at(4), RecordedAt: at(20)},
			},
			peak: 2, peakAt: at(4), first: at(0), last: at(10),
			series: []Point{{at(0), 1}, {at(4), 2}, {at(4), 1}, {at(10), 0}}, proc: 1, kl: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.evs)
			if s.PeakConcurrency != tt.peak || !s.PeakAt.Equal(tt.peakAt) {
				t.Errorf("peak %d at %v, want %d at %v", s.PeakConcurrency, s.PeakAt, tt.peak, tt.peakAt)
			}
			if !s.First.Equal(tt.first) || !s.Last.Equal(tt.last) {
				t.Errorf("first/last %v / %v, want %v / %v", s.First, s.Last, tt.first, tt.last)
			}
			if !reflect.DeepEqual(s.Concurrency, tt.series) {
				t.Errorf("series\n got %v\nwant %v", s.Concurrency, tt.series)
			}
			if s.Processed != tt.proc || s.Killed != tt.kl || s.Total != len(tt.evs) {
				t.Errorf("processed %d killed %d total %d", s.Processed, s.Killed, s.Total)
			}
		})
	}
}

// recordAll opens path, records evs and closes the store.
func recordAll(t *testing.T, path string, evs ...Event) []Event {
	t.Helper()
	s, err := Open(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	s.now = fixedClock()
	var out []Event
	for _, e := range evs {
		got, err := s.Record(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenReplaysTheFile(t *testing.T) {
	sample := []Event{
		{Kind: Processed, JobID: "job-1", MessageID: "m-1", Start: at(0).In(time.FixedZone("X", 3600)), End: at(60), Outcome: "encoded"},
		{Kind: Killed, JobID: "job-2", MessageID: "m-2", Start: at(1), End: at(30), Detail: "SIGTERM"},
		{Kind: Processed},
	}
	good := func(t *testing.T, path string) []Event { return recordAll(t, path, sample...) }
	tests := []struct {
		name string
		// damage the file after the good events were written; return how many
		// events must survive
		damage func(t *testing.T, path string) int
	}{
		{"intact", func(*testing.T, string) int { return 3 }},
		{"truncated last line", func(t *testing.T, path string) int {
			appendRaw(t, path, `{"seq":4,"kind":"processed","count":3,"jobId":"jo`)
			return 3
		}},
		{"garbage last line with newline", func(t *testing.T, path string) int {
			appendRaw(t, path, "\x00\x00\x00\n")
			return 3
		}},
		{"torn write inside the last record", func(t *testing.T, path string) int {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b[:len(b)-10], 0o600); err != nil {
				t.Fatal(err)
			}
			return 2
		}},
		{"complete last record without newline", func(t *testing.T, path string) int {
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, b[:len(b)-1], 0o600); err != nil {
				t.Fatal(err)
			}
			return 3
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a", "b", "events.jsonl")
			written := good(t, path)
			keep := tt.damage(t, path)

			s, err := Open(path, discard())
			if err != nil {
				t.Fatal(err)
			}
			got := s.List()
			if !reflect.DeepEqual(got, written[:keep]) {
				t.Fatalf("replayed\n %+v\nwant\n %+v", got, written[:keep])
			}
			// The next record continues the sequence and the kind's count, and
			// lands on a clean line of its own.
			next, err := s.Record(context.Background(), Event{Kind: Processed, JobID: "after"})
			if err != nil {
				t.Fatal(err)
			}
			wantCount := 1
			for _, e := range written[:keep] {
				if e.Kind == Processed {
					wantCount++
				}
			}
			if next.Seq != keep+1 || next.Count != wantCount {
				t.Errorf("next seq %d count %d, want %d %d", next.Seq, next.Count, keep+1, wantCount)
			}
			s.Close()
			again, err := Open(path, discard())
			if err != nil {
				t.Fatalf("reopen after append: %v", err)
			}
			defer again.Close()
			if got := again.List(); !reflect.DeepEqual(got, append(written[:keep:keep], next)) {
				t.Errorf("after append and reopen:\n %+v", got)
			}
		})
	}
}

func appendRaw(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesDamageBeforeTheLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	recordAll(t, path, Event{Kind: Processed}, Event{Kind: Killed})
	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	if err := os.WriteFile(path, []byte("{not json\n"+lines[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, discard())
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v, want one naming line 1", err)
	}
	if after, _ := os.ReadFile(path); string(after) != "{not json\n"+lines[1] {
		t.Errorf("the damaged file was modified")
	}
}

func TestEventFileIsPrivateJSONLines(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "events.jsonl")
	evs := recordAll(t, path, Event{Kind: Processed, JobID: "j"}, Event{Kind: Killed})
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(evs) {
		t.Fatalf("%d lines for %d events:\n%s", len(lines), len(evs), b)
	}
	for i, l := range lines {
		var e Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || !reflect.DeepEqual(e, evs[i]) {
			t.Errorf("line %d = %s (%v), want %+v", i+1, l, err, evs[i])
		}
	}
}

func TestOnlyOneStoreMayOpenAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s, err := Open(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, discard()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second open: err = %v, want in use", err)
	}
	s.Close()
	s2, err := Open(path, discard())
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s2.Close()
}

func TestRecordAfterCloseFails(t *testing.T) {
	s := memStore(t)
	s.Close()
	if _, err := s.Record(context.Background(), Event{Kind: Processed}); !errors.Is(err, ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
}
