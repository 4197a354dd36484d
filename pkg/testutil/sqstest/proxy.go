package sqstest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proxy stands between code under test and an Emulator: it forwards every
// request, counts the SQS calls it sees by operation, and can make chosen
// operations hang or fail — a slow or broken SQS, for the paths that must
// survive one. Point the code at it with Env or Getenv instead of the
// emulator's.
//
//	p := emu.Proxy(t)
//	p.Hold("DeleteMessageBatch", 0) // every delete hangs until its caller gives up
//	env := p.Getenv(map[string]string{"QUEUE_URL": q.URL})
type Proxy struct {
	// Endpoint is the proxy's base URL, http://127.0.0.1:PORT.
	Endpoint string

	emu   *Emulator
	mu    sync.Mutex
	calls map[string]int
	fault map[string]fault
	holds []chan struct{}
}

type fault struct {
	fail    bool          // answer 403 AccessDenied (not retried by the SDKs)
	release chan struct{} // hold until closed or the caller gives up
	left    int           // calls still to hold or fail; < 0: every call
}

// Proxy starts a proxy in front of e for the duration of t. Queue URLs name
// the emulator's address; the SDKs send requests to the endpoint regardless.
func (e *Emulator) Proxy(t testing.TB) *Proxy {
	t.Helper()
	target, err := url.Parse(e.Endpoint)
	if err != nil {
		t.Fatalf("sqstest: %v", err)
	}
	p := &Proxy{emu: e, calls: map[string]int{}, fault: map[string]fault{}}
	forward := httputil.NewSingleHostReverseProxy(target)
	forward.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) {
		w.WriteHeader(http.StatusBadGateway) // the caller gave up mid-call, or the emulator stopped
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
		p.mu.Lock()
		p.calls[op]++
		f, faulty := p.fault[op]
		if faulty && f.left > 0 {
			if f.left--; f.left == 0 {
				delete(p.fault, op) // this is the last call it applies to
			} else {
				p.fault[op] = f
			}
		}
		p.mu.Unlock()
		switch {
		case faulty && f.fail:
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.sqs#AccessDenied","message":"sqstest: injected fault"}`))
			return
		case faulty && f.release != nil:
			select {
			case <-f.release:
			case <-r.Context().Done():
				return // the caller gave up: nothing reaches the emulator
			}
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.mu.Lock()
		clear(p.fault)
		for _, c := range p.holds {
			select {
			case <-c:
			default:
				close(c)
			}
		}
		p.mu.Unlock()
		srv.Close()
	})
	p.Endpoint = srv.URL
	return p
}

// Hold makes the next n calls of op (e.g. "DeleteMessageBatch"; n < 1:
// every call) hang, unanswered and not forwarded, until their caller gives
// up; calls still waiting when Heal is called go through then.
func (p *Proxy) Hold(op string, n int) {
	if n < 1 {
		n = -1
	}
	release := make(chan struct{})
	p.mu.Lock()
	p.holds = append(p.holds, release) // closed at cleanup, so no call hangs past t
	p.mu.Unlock()
	p.set(op, fault{release: release, left: n})
}

// Fail makes every call of op fail at once with AccessDenied, an error the
// AWS SDKs do not retry.
func (p *Proxy) Fail(op string) { p.set(op, fault{fail: true, left: -1}) }

// Heal ends Hold or Fail for op: calls forward normally again.
func (p *Proxy) Heal(op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.fault[op]; f.release != nil {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
	}
	delete(p.fault, op)
}

func (p *Proxy) set(op string, f fault) {
	p.Heal(op)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault[op] = f
}

// Calls is how many calls of op have reached the proxy so far.
func (p *Proxy) Calls(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[op]
}

// WaitCalls polls until at least n calls of op have reached the proxy and
// fails t after timeout. Call it from the test's goroutine.
func (p *Proxy) WaitCalls(t testing.TB, op string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval / 5)
	defer tick.Stop()
	for p.Calls(op) < n {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("sqstest: %d %s calls within %v, want at least %d", p.Calls(op), op, timeout, n)
		}
	}
}

// Env is the emulator's Env with AWS_ENDPOINT_URL_SQS pointing at the proxy.
func (p *Proxy) Env() []string {
	env := p.emu.Env()
	for i, kv := range env {
		if strings.HasPrefix(kv, "AWS_ENDPOINT_URL_SQS=") {
			env[i] = "AWS_ENDPOINT_URL_SQS=" + p.Endpoint
		}
	}
	return env
}

// Getenv is the emulator's Getenv with AWS_ENDPOINT_URL_SQS pointing at the
// proxy (extra still wins).
func (p *Proxy) Getenv(extra map[string]string) func(string) string {
	vars := map[string]string{"AWS_ENDPOINT_URL_SQS": p.Endpoint}
	for k, v := range extra {
		vars[k] = v
	}
	return p.emu.Getenv(vars)
}
