package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Runner sends profiles' requests to one target.
type Runner struct {
	BaseURL string       // e.g. http://127.0.0.1:8080, no trailing slash needed
	Client  *http.Client // nil: keep-alive, 60 s timeout
}

func (rn Runner) client() *http.Client {
	if rn.Client != nil {
		return rn.Client
	}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
}

func (rn Runner) url(r Request) string { return strings.TrimRight(rn.BaseURL, "/") + r.Path }

// Run replays a profile by its executor and returns what was measured;
// check it with res.Check(p.Thresholds).
func (rn Runner) Run(ctx context.Context, p Profile) (*Result, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	switch p.Executor {
	case ConstantVUs:
		return rn.VUs(ctx, p.VUs, time.Duration(p.Duration), p.Think(), p.Requests), nil
	case SharedIterations:
		return rn.Iterations(ctx, p.VUs, p.Iterations, time.Duration(p.MaxDuration), p.Think(), p.Requests), nil
	default: // RampingArrivalRate (Validate allows no other)
		pacer := Stages(p.StartRate, time.Duration(p.TimeUnit), p.Stages)
		return rn.Rate(ctx, pacer, pacer.Duration(), p.PreAllocatedVUs, p.MaxVUs, p.Requests), nil
	}
}

// VUs is constant concurrency, k6's constant-vus: vus goroutines, each
// sending reqs in order and then sleeping think, starting iterations until
// duration has passed (an iteration under way finishes, as within k6's
// gracefulStop). With think 0 and slow requests, vus requests are held in
// flight for the whole duration.
func (rn Runner) VUs(ctx context.Context, vus int, duration, think time.Duration, reqs []Request) *Result {
	res := &Result{}
	start := time.Now()
	stop := make(chan struct{})
	timer := time.AfterFunc(duration, func() { close(stop) })
	defer timer.Stop()
	rn.vus(ctx, vus, stop, think, reqs, res, func() bool { return true })
	res.Elapsed = time.Since(start)
	return res
}

// Iterations is k6's shared-iterations: iterations passes over reqs shared
// by vus goroutines, stopped after maxDuration.
func (rn Runner) Iterations(ctx context.Context, vus, iterations int, maxDuration, think time.Duration, reqs []Request) *Result {
	res := &Result{}
	start := time.Now()
	stop := make(chan struct{})
	timer := time.AfterFunc(maxDuration, func() { close(stop) })
	defer timer.Stop()
	var mu sync.Mutex
	left := iterations
	rn.vus(ctx, vus, stop, think, reqs, res, func() bool {
		mu.Lock()
		defer mu.Unlock()
		left--
		return left >= 0
	})
	res.Elapsed = time.Since(start)
	return res
}

// vus runs n virtual users until stop closes, ctx ends or claim says no
// iteration is left.
func (rn Runner) vus(ctx context.Context, n int, stop <-chan struct{}, think time.Duration, reqs []Request, res *Result, claim func() bool) {
	client := rn.client()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				if !claim() {
					return
				}
				for _, r := range reqs {
					res.add(rn.do(ctx, client, r))
				}
				if think <= 0 {
					continue
				}
				t := time.NewTimer(think)
				select {
				case <-t.C:
				case <-stop:
					t.Stop()
					return
				case <-ctx.Done():
					t.Stop()
					return
				}
			}
		})
	}
	wg.Wait()
}

// do sends one request and measures it from the start of the send to the
// last byte of the body, like k6's http_req_duration (connections are
// reused, as k6's are).
func (rn Runner) do(ctx context.Context, client *http.Client, r Request) Sample {
	s := Sample{Name: r.Name, Expected: r.Status}
	var body io.Reader
	if len(r.Body) > 0 {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, rn.url(r), body)
	if err != nil {
		s.Err = err
		return s
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		s.Duration, s.Err = time.Since(start), err
		return s
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.Duration, s.Status, s.Err = time.Since(start), resp.StatusCode, err
	return s
}

// Rate is a constant or ramped arrival rate with the vegeta library: one
// request of reqs (round robin) per arrival, whatever the target's latency,
// with workers goroutines at first and at most maxWorkers (k6's
// preAllocatedVUs and maxVUs; when all are busy vegeta delays arrivals where
// k6 would drop them). Pace it with vegeta.ConstantPacer or Stages.
func (rn Runner) Rate(ctx context.Context, pacer vegeta.Pacer, duration time.Duration, workers, maxWorkers int, reqs []Request) *Result {
	byKey := map[string]Request{}
	targets := make([]vegeta.Target, len(reqs))
	for i, r := range reqs {
		targets[i] = vegeta.Target{Method: r.Method, URL: rn.url(r), Body: r.Body}
		if len(r.Body) > 0 {
			targets[i].Header = http.Header{"Content-Type": {"application/json"}}
		}
		byKey[r.Method+" "+targets[i].URL] = r
	}
	atk := vegeta.NewAttacker(
		vegeta.Client(rn.client()),
		vegeta.Workers(uint64(max(workers, 1))),
		vegeta.MaxWorkers(uint64(max(maxWorkers, workers, 1))),
	)
	res := &Result{}
	start := time.Now()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			atk.Stop()
		case <-stopped:
		}
	}()
	for vr := range atk.Attack(vegeta.NewStaticTargeter(targets...), pacer, duration, "loadgen") {
		r := byKey[vr.Method+" "+vr.URL]
		s := Sample{Name: r.Name, Expected: r.Status, Status: int(vr.Code), Duration: vr.Latency}
		if vr.Code == 0 && vr.Error != "" { // vegeta also sets Error for 4xx and 5xx answers
			s.Err = errors.New(vr.Error)
		}
		res.add(s)
	}
	res.Elapsed = time.Since(start)
	return res
}
