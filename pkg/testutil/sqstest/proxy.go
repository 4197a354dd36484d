package sqstest

import (
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/faultproxy"
)

// Proxy stands between code under test and an Emulator: it forwards every
// request, counts the SQS calls it sees by operation, and can make chosen
// operations hang or fail — a slow or broken SQS, for the paths that must
// survive one. Point the code at it with Getenv, or with its Endpoint as
// AWS_ENDPOINT_URL_SQS, instead of the emulator's. It is a faultproxy.Proxy
// with one fault per operation.
//
//	p := emu.Proxy(t)
//	p.Hold("DeleteMessageBatch", 0) // every delete hangs until its caller gives up
//	env := p.Getenv(map[string]string{"QUEUE_URL": q.URL})
type Proxy struct {
	// Endpoint is the proxy's base URL, http://127.0.0.1:PORT.
	Endpoint string

	emu   *Emulator
	px    *faultproxy.Proxy
	mu    sync.Mutex
	fault map[string]*faultproxy.Fault // by operation
	holds map[*faultproxy.Fault]chan struct{}
}

// Proxy starts a proxy in front of e for the duration of t. Queue URLs name
// the emulator's address; the SDKs send requests to the endpoint regardless.
func (e *Emulator) Proxy(t testing.TB) *Proxy {
	t.Helper()
	px, err := faultproxy.Start(e.Endpoint)
	if err != nil {
		t.Fatalf("sqstest: %v", err)
	}
	t.Cleanup(px.Close) // releases the calls still held
	return &Proxy{Endpoint: px.URL, emu: e, px: px, fault: map[string]*faultproxy.Fault{}, holds: map[*faultproxy.Fault]chan struct{}{}}
}

// Hold makes the next n calls of op (e.g. "DeleteMessageBatch"; n < 1:
// every call) hang, unanswered and not forwarded, until their caller gives
// up; calls still waiting when Heal is called go through then.
func (p *Proxy) Hold(op string, n int) {
	release := make(chan struct{})
	f := &faultproxy.Fault{Name: op + " held", Match: faultproxy.AWSOperation(op), Times: int64(max(n, 0)), Hold: release}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holds[f] = release
	p.set(op, f)
}

// Fail makes every call of op fail at once with AccessDenied, an error the
// AWS SDKs do not retry.
func (p *Proxy) Fail(op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.set(op, &faultproxy.Fault{
		Name: op + " AccessDenied", Match: faultproxy.AWSOperation(op),
		Status: http.StatusForbidden, ContentType: "application/x-amz-json-1.0",
		Body: `{"__type":"com.amazonaws.sqs#AccessDenied","message":"sqstest: injected fault"}`,
	})
}

// Heal ends Hold or Fail for op: calls forward normally again, held ones
// too.
func (p *Proxy) Heal(op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.heal(op)
}

// set puts f in place of op's fault; p.mu is held.
func (p *Proxy) set(op string, f *faultproxy.Fault) {
	p.heal(op)
	p.fault[op] = f
	p.px.Add(f)
}

// heal is Heal with p.mu held.
func (p *Proxy) heal(op string) {
	f := p.fault[op]
	if f == nil {
		return
	}
	p.px.Remove(f)
	if release, ok := p.holds[f]; ok {
		close(release)
		delete(p.holds, f)
	}
	delete(p.fault, op)
}

// Calls is how many calls of op have reached the proxy so far.
func (p *Proxy) Calls(op string) int { return p.px.Calls(op) }

// WaitCalls polls until at least n calls of op have reached the proxy and
// fails t after timeout. Call it from the test's goroutine.
func (p *Proxy) WaitCalls(t testing.TB, op string, n int, timeout time.Duration) {
	t.Helper()
	if err := localproc.PollContext(t.Context(), pollInterval/5, timeout, func() (bool, error) { return p.Calls(op) >= n, nil }); err != nil {
		t.Fatalf("sqstest: %d %s calls, want at least %d: %v", p.Calls(op), op, n, err)
	}
}

// Getenv is the emulator's Getenv with AWS_ENDPOINT_URL_SQS pointing at the
// proxy (extra still wins).
func (p *Proxy) Getenv(extra map[string]string) func(string) string {
	vars := map[string]string{"AWS_ENDPOINT_URL_SQS": p.Endpoint}
	maps.Copy(vars, extra)
	return p.emu.Getenv(vars)
}
