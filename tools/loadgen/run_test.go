package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// barrier answers requests only in generations of n in flight together,
// and records the most it saw; after gens generations it calls done.
// A generation closes on its nth arrival, not when n are in flight: a
// released handler may not have returned yet when the next arrivals come
// (on a busy machine), and counting it would close a generation early.
type barrier struct {
	mu       sync.Mutex
	n, cur   int
	arrived  int
	most     int
	gens     int
	stopAt   int
	done     func()
	released chan struct{}
}

func (b *barrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.cur++
	b.arrived++
	b.most = max(b.most, b.cur)
	ch := b.released
	if b.arrived%b.n == 0 {
		close(b.released)
		b.released = make(chan struct{})
		if b.gens++; b.gens == b.stopAt {
			b.done()
		}
	}
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.cur--; b.mu.Unlock() }()
	select {
	case <-ch:
	case <-r.Context().Done():
	}
}

func TestVUsHoldExactlyNRequestsInFlight(t *testing.T) {
	const n, gens = 6, 5
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := &barrier{n: n, stopAt: gens, done: cancel, released: make(chan struct{})}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)

	// No think time: each VU sends its next request as soon as one returns,
	// so the server sees generations of n; it ends the run after gens.
	res := Runner{BaseURL: srv.URL}.VUs(ctx, n, time.Minute, 0,
		[]Request{{Name: "hold", Method: "GET", Path: "/", Status: 200}})
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gens < gens || b.most != n {
		t.Errorf("%d generations, at most %d in flight; want %d generations of exactly %d (the run timed out?)", b.gens, b.most, gens, n)
	}
	ok := 0
	for _, s := range res.Samples("hold") {
		if s.CheckOK() {
			ok++
		}
	}
	// The last generation's answers race with the cancel that ends the run.
	if ok < (gens-1)*n || ok > gens*n {
		t.Errorf("%d requests answered, want %d to %d (%d generations of %d)", ok, (gens-1)*n, gens*n, gens, n)
	}
}

func TestVUsThinkBetweenIterations(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	// 3 VUs, 2 requests an iteration, think longer than the run: exactly
	// one iteration each.
	res := Runner{BaseURL: srv.URL}.VUs(context.Background(), 3, 200*time.Millisecond, time.Hour, []Request{
		{Name: "a", Method: "GET", Path: "/a", Status: 200},
		{Name: "b", Method: "POST", Path: "/b", Body: []byte(`{"Messages":1}`), Status: 200},
	})
	if hits.Load() != 6 || res.Count("a") != 3 || res.Count("b") != 3 {
		t.Errorf("server saw %d, result a=%d b=%d; want 6, 3, 3", hits.Load(), res.Count("a"), res.Count("b"))
	}
}

func TestIterationsAreSharedAndCounted(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	res := Runner{BaseURL: srv.URL}.Iterations(context.Background(), 4, 25, time.Minute, 0,
		[]Request{{Name: "send", Method: "POST", Path: "/send", Body: []byte(`{"Messages":3}`), Status: 200}})
	if hits.Load() != 25 || res.Count("send") != 25 {
		t.Errorf("server saw %d, result %d; want 25", hits.Load(), res.Count("send"))
	}
}

func TestRateSendsAtTheArrivalRateWhateverTheLatency(t *testing.T) {
	var mu sync.Mutex
	var seen []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, time.Now())
		mu.Unlock()
		time.Sleep(200 * time.Millisecond) // the service under test is slow
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	// 40/s for 1 s against a 200 ms service: 40 requests, spread over the
	// second (about 8 in flight), not sent as fast as answers come back.
	res := Runner{BaseURL: srv.URL}.Rate(context.Background(), vegeta.ConstantPacer{Freq: 40, Per: time.Second}, time.Second, 2, 100,
		[]Request{{Name: "slow", Method: "GET", Path: "/", Status: http.StatusTeapot}})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 40 || res.Count("slow") != 40 {
		t.Fatalf("server saw %d, result %d; want 40", len(seen), res.Count("slow"))
	}
	if span := seen[len(seen)-1].Sub(seen[0]); span < 900*time.Millisecond {
		t.Errorf("40 arrivals within %v: not paced at 40/s", span)
	}
	out, _ := res.Check(map[string][]string{"checks": {"rate==1"}, "http_req_failed": {"rate==1"}, "http_req_duration": {"min>=200"}})
	for _, o := range out {
		if !o.OK {
			t.Error(o) // 418 is what the check expects, and a failed request for k6
		}
	}
}
