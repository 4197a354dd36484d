package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/buildinfo"
	"github.com/keda-eks-samples/workloads/pkg/httpx"
	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func start(t *testing.T, cfg Config, app http.Handler, checks map[string]Check) (string, context.CancelFunc, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan struct{})
	s := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app, checks)
	go func() { done <- s.Serve(ctx, ln); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return "http://" + ln.Addr().String(), cancel, done
}

func TestBodyOverCapIs413(t *testing.T) {
	app := httpx.NewRouter()
	app.Post("/echo", func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := httpx.DecodeJSON(r, &v); err != nil {
			httpx.WriteError(w, err)
			return
		}
		httpx.WriteJSON(w, 200, v)
	})
	url, _, _ := start(t, Config{ShutdownTimeout: time.Second, MaxBodyBytes: 64}, app, nil)
	if code, body := svctest.Do(t, "POST", url+"/echo", "application/json", strings.NewReader(`{"a":"`+strings.Repeat("x", 100)+`"}`)); code != 413 {
		t.Fatalf("got %d %s, want 413", code, body)
	}
	if code, _ := svctest.Do(t, "POST", url+"/echo", "application/json", strings.NewReader(`{"a":1}`)); code != 200 {
		t.Fatalf("small body got %d", code)
	}
}

func TestHealthzTellsTheBuildVersion(t *testing.T) {
	url, _, _ := start(t, Config{ShutdownTimeout: time.Second, MaxBodyBytes: 1}, http.NotFoundHandler(), nil)
	code, body := svctest.Get(t, url+"/healthz")
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 {
		t.Fatalf("got %d %s (%v)", code, body, err)
	}
	if want := map[string]string{"status": "ok", "version": buildinfo.Version}; !maps.Equal(got, want) {
		t.Errorf("healthz = %v, want %v", got, want)
	}
}

func TestReadyzReflectsDependencyChecks(t *testing.T) {
	var down error = errors.New("queue unreachable")
	url, _, _ := start(t, Config{ShutdownTimeout: time.Second, MaxBodyBytes: 1}, http.NotFoundHandler(),
		map[string]Check{"sqs": func(context.Context) error { return down }})
	if code, body := svctest.Get(t, url+"/readyz"); code != 503 || !strings.Contains(body, "queue unreachable") {
		t.Fatalf("got %d %s", code, body)
	}
	if code, _ := svctest.Get(t, url+"/healthz"); code != 200 {
		t.Fatalf("liveness must not depend on the queue: %d", code)
	}
}

func TestShutdownDrainsInFlightAndFailsReadiness(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	url, cancel, done := start(t, Config{ShutdownTimeout: 10 * time.Second, ShutdownDelay: time.Second, MaxBodyBytes: 1}, app, nil)
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel() // what SIGTERM does
	if err := localproc.Poll(5*time.Second, func() (bool, error) {
		code, _ := svctest.Get(t, url+"/readyz")
		return code == 503, nil
	}); err != nil {
		t.Fatal("readyz did not fail after shutdown began")
	}
	close(release)
	if body := <-got; body != "done" {
		t.Fatalf("in-flight request got %q", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("graceful shutdown returned %v", err)
	}
}

func TestReadConfigRejectsDelayNotShorterThanTimeout(t *testing.T) {
	r := configReader(map[string]string{"SHUTDOWN_DELAY": "30s", "SHUTDOWN_TIMEOUT": "20s"})
	ReadConfig(r)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "SHUTDOWN_DELAY") {
		t.Fatalf("got %v", err)
	}
}
