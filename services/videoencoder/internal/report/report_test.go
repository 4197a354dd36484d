package report

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/jobreport"
)

// These tests pin the client's retry rules against a scripted HTTP server;
// the real result analyzer is exercised by the service's integration tests.

func TestPostRetriesOnlyWhatMaySucceedLater(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int // answer to attempt 1, 2, ... (last one repeats)
		wantCalls int32
		wantErr   bool
	}{
		{"ok at once", []int{200}, 1, false},
		{"503 then ok", []int{503, 200}, 2, false},
		{"429 then ok", []int{429, 200}, 2, false},
		{"always 500: gives up after 5", []int{500}, 5, true},
		{"400 is final", []int{400}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				var e jobreport.Report
				if r.URL.Path != "/create/kill" || r.Header.Get("Content-Type") != "application/json" ||
					json.NewDecoder(r.Body).Decode(&e) != nil || e.MessageID != "m-1" || e.Outcome != jobreport.OutcomeKilled {
					t.Errorf("unexpected request %s %s %+v", r.Method, r.URL.Path, e)
				}
				w.WriteHeader(tt.statuses[min(n, len(tt.statuses))-1])
			}))
			defer srv.Close()
			c := &Client{BaseURL: srv.URL + "/", Backoff: time.Millisecond}
			err := c.Killed(context.Background(), jobreport.Report{MessageID: "m-1", Outcome: jobreport.OutcomeKilled, Start: time.Now(), End: time.Now()})
			if (err != nil) != tt.wantErr || calls.Load() != tt.wantCalls {
				t.Fatalf("err=%v calls=%d, want error=%v calls=%d", err, calls.Load(), tt.wantErr, tt.wantCalls)
			}
		})
	}
}

func TestPostGivesUpWhenTheBudgetEnds(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select { // never answers while the client waits
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c := &Client{BaseURL: srv.URL, Timeout: time.Minute}
	if err := c.Processed(ctx, jobreport.Report{}); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v, want a deadline error", err)
	}
}

func TestDisabledClientSendsNothing(t *testing.T) {
	var c *Client
	if c.Enabled() || c.Processed(context.Background(), jobreport.Report{}) != nil || (&Client{}).Killed(context.Background(), jobreport.Report{}) != nil {
		t.Fatal("a client without BaseURL must be a silent no-op")
	}
}
