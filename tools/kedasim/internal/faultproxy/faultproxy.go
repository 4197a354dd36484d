// Package faultproxy is a reverse proxy on 127.0.0.1 that passes requests
// to a real local service until a scenario tells it to fail them: the
// fault scenarios put it between KEDA and Prometheus or the CloudWatch
// stand-in, and between sqsworker and the SQS emulator. Hand-written: a
// few lines over net/http/httputil, which does the proxying; the fault
// injectors that exist (toxiproxy, Envoy's fault filter) are whole servers
// for what a switch in front of one ReverseProxy does here.
package faultproxy

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// Fault is what the proxy answers in place of the service.
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
}

// Proxy forwards to its target, or answers with the current fault.
type Proxy struct {
	URL    string
	srv    *httptest.Server
	mu     sync.Mutex
	fault  *Fault
	seen   atomic.Int64 // matching requests since the fault was set
	passed atomic.Int64
	failed atomic.Int64
}

// Start starts a proxy to target (a base URL); Close stops it.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q is not a URL", target)
	}
	p := &Proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := p.failing(r); f != nil {
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

func (p *Proxy) failing(r *http.Request) *Fault {
	p.mu.Lock()
	f := p.fault
	p.mu.Unlock()
	if f == nil || (f.Match != nil && !f.Match(r)) {
		return nil
	}
	if n := p.seen.Add(1); f.Every > 1 && n%f.Every != 0 {
		return nil
	}
	return f
}

// Set starts failing requests with f; Set(nil) passes them again.
func (p *Proxy) Set(f *Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
	p.seen.Store(0)
}

// Counts is how many requests went through and how many were failed.
func (p *Proxy) Counts() (passed, failed int64) { return p.passed.Load(), p.failed.Load() }

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// Unavailable is a service that is down behind a load balancer: 503 to
// every request.
func Unavailable(name string) *Fault {
	return &Fault{Name: name + " 503", Status: http.StatusServiceUnavailable, ContentType: "text/plain", Body: "service unavailable (faultproxy)\n"}
}

// AWSOperation matches the requests of one AWS API operation in either
// wire form the SDKs use: the JSON protocols' X-Amz-Target header
// (AmazonSQS.GetQueueAttributes) or the RPC v2 CBOR path
// (/service/GraniteServiceVersion20100801/operation/GetMetricData).
func AWSOperation(op string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if t := r.Header.Get("X-Amz-Target"); t != "" {
			return strings.HasSuffix(t, "."+op)
		}
		return strings.HasSuffix(r.URL.Path, "/operation/"+op)
	}
}
