package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func TestMain(m *testing.M) { svctest.RunMain(m, main) }

func TestRoutesAnswerLikeTheSeed(t *testing.T) {
	s := svctest.Start(t, run, svctest.Env(t, map[string]string{"WEATHER_MAX_DELAY": "0s"}))
	tests := []struct {
		method, path string
		status       int
		body         string // substring
	}{
		{"GET", "/", 200, "Hello World!"},
		{"GET", "/weatherforecast", 200, `"temperatureF"`},
		{"GET", "/healthz", 200, `"ok"`},
		{"GET", "/readyz", 200, `"ready"`},
		{"GET", "/nope", 404, `{"error":"no route for GET /nope"}`},
		{"POST", "/weatherforecast", 405, `{"error":"method POST not allowed on /weatherforecast"}`},
		{"DELETE", "/healthz", 405, `"error"`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, body := svctest.Do(t, tt.method, s.URL+tt.path, "", nil)
			if status != tt.status || !strings.Contains(body, tt.body) {
				t.Errorf("got %d %q, want %d containing %q", status, body, tt.status, tt.body)
			}
		})
	}
}

func TestInFlightRequestCompletesOnSIGTERMWhileReadyzFails(t *testing.T) {
	env := svctest.Env(t, map[string]string{
		"WEATHER_MIN_DELAY": "2s", "WEATHER_MAX_DELAY": "2s",
		"SHUTDOWN_DELAY": "1s", "SHUTDOWN_TIMEOUT": "10s",
	})
	url := "http://127.0.0.1:" + env["PORT"]
	p := svctest.StartProcess(t, env)
	p.WaitReady(t, url)

	var wg sync.WaitGroup
	var status int
	var forecasts []map[string]any
	wg.Go(func() {
		resp, err := http.Get(url + "/weatherforecast")
		if err != nil {
			t.Errorf("in-flight request failed: %v", err)
			return
		}
		defer resp.Body.Close()
		status = resp.StatusCode
		_ = json.NewDecoder(resp.Body).Decode(&forecasts)
	})
	// The request is in flight once the handler has logged it.
	if err := localproc.Poll(10*time.Second, func() (bool, error) {
		return strings.Contains(p.Output.String(), "forecast requested"), nil
	}); err != nil {
		t.Fatal(err)
	}
	p.Signal(t, syscall.SIGTERM)
	if err := localproc.Poll(5*time.Second, func() (bool, error) {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable, nil
	}); err != nil {
		t.Fatalf("/readyz never failed after SIGTERM: %v\n%s", err, p.Output)
	}
	wg.Wait()
	if status != http.StatusOK || len(forecasts) != 5 {
		t.Fatalf("in-flight request got %d with %d forecasts", status, len(forecasts))
	}
	if code := p.Wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d, want 0; output:\n%s", code, p.Output)
	}
}
