// Package faultproxy is a reverse proxy on 127.0.0.1 that passes requests
// to a real local service until a test tells it to fail or hold them: the
// services' tests put it between a worker and the SQS emulator
// (pkg/testutil/sqstest's Proxy), the e2e fault scenarios between KEDA and
// Prometheus or the CloudWatch stand-in, and between sqsworker and SQS.
// Hand-written: a few lines over net/http/httputil, which does the
// proxying; the fault injectors that exist (toxiproxy, Envoy's fault filter)
// are whole servers for what a switch in front of one ReverseProxy does
// here.
package faultproxy

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Fault is what the proxy does in place of passing a request on.
type Fault struct {
	Name        string // for the timeline and the summary, e.g. "Prometheus 503"
	Status      int
	ContentType string
	Body        string
	// Match picks the requests to fail; nil fails every request.
	Match func(*http.Request) bool
	// Every fails one matching request in Every (0 or 1: all of them), as
	// a throttled API does under a rate limit.
	Every int64
	// Times ends the fault by itself after it has applied this many times
	// (0: it lasts until it is removed).
	Times int64
	// Hold, when not nil, makes the requests it applies to wait, unanswered
	// and not passed on, until it is closed (they go through then) or their
	// caller gives up; Status and Body are not used.
	Hold <-chan struct{}
}

// active is a fault in place, with its own count of the requests it saw.
type active struct {
	*Fault
	seen, applied int64
}

// Proxy forwards to its target, or answers with the first fault in place
// that applies to the request.
type Proxy struct {
	URL    string
	srv    *httptest.Server
	mu     sync.Mutex
	faults []*active
	calls  map[string]int // by AWS operation (Operation)
	passed atomic.Int64
	failed atomic.Int64
	closed chan struct{} // releases every hold at Close
	once   sync.Once
}

// Start starts a proxy to target (a base URL); Close stops it.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q is not a URL", target)
	}
	p := &Proxy{calls: map[string]int{}, closed: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) {
		w.WriteHeader(http.StatusBadGateway) // the caller gave up mid-call, or the target stopped
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := p.fault(r)
		switch {
		case f == nil:
		case f.Hold != nil:
			select {
			case <-f.Hold:
			case <-p.closed:
			case <-r.Context().Done():
				return // the caller gave up: nothing reaches the target
			}
		default:
			p.failed.Add(1)
			if f.ContentType != "" {
				w.Header().Set("Content-Type", f.ContentType)
			}
			w.WriteHeader(f.Status)
			_, _ = w.Write([]byte(f.Body))
			return
		}
		p.passed.Add(1)
		rp.ServeHTTP(w, r)
	})}}
	p.srv.Start()
	p.URL = p.srv.URL
	return p, nil
}

// fault counts r's operation and returns the fault that applies to it, if
// any.
func (p *Proxy) fault(r *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[Operation(r)]++
	for i, a := range p.faults {
		if a.Match != nil && !a.Match(r) {
			continue
		}
		if a.seen++; a.Every > 1 && a.seen%a.Every != 0 {
			continue
		}
		if a.applied++; a.Times > 0 && a.applied >= a.Times {
			p.faults = slices.Delete(p.faults, i, i+1) // this is the last request it applies to
		}
		return a.Fault
	}
	return nil
}

// Set puts f in place of every fault (nil: none, requests pass again).
func (p *Proxy) Set(f *Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
	if f != nil {
		p.faults = []*active{{Fault: f}}
	}
}

// Add puts f in place beside the faults already there; the one added
// first applies where two match.
func (p *Proxy) Add(f *Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &active{Fault: f})
}

// Remove takes f out (the requests it holds stay held until its Hold is
// closed).
func (p *Proxy) Remove(f *Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = slices.DeleteFunc(p.faults, func(a *active) bool { return a.Fault == f })
}

// Counts is how many requests went through and how many were failed.
func (p *Proxy) Counts() (passed, failed int64) { return p.passed.Load(), p.failed.Load() }

// Calls is how many requests of an AWS operation (see Operation) have
// reached the proxy, failed and held ones included.
func (p *Proxy) Calls(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[op]
}

// Close releases every held request and stops the proxy.
func (p *Proxy) Close() {
	p.once.Do(func() { close(p.closed) })
	p.srv.Close()
}

// Unavailable is a service that is down behind a load balancer: 503 to
// every request.
func Unavailable(name string) *Fault {
	return &Fault{Name: name + " 503", Status: http.StatusServiceUnavailable, ContentType: "text/plain", Body: "service unavailable (faultproxy)\n"}
}

// Operation is the AWS API operation a request calls, in either wire form
// the SDKs use: the JSON protocols' X-Amz-Target header
// (AmazonSQS.GetQueueAttributes) or the RPC v2 CBOR path
// (/service/GraniteServiceVersion20100801/operation/GetMetricData); "" for
// any other request.
func Operation(r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return t[strings.LastIndex(t, ".")+1:]
	}
	if _, op, ok := strings.Cut(r.URL.Path, "/operation/"); ok {
		return op
	}
	return ""
}

// AWSOperation matches the requests of one AWS API operation (see
// Operation).
func AWSOperation(op string) func(*http.Request) bool {
	return func(r *http.Request) bool { return Operation(r) == op }
}
