package weather

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFahrenheitMatchesSeedFormula(t *testing.T) {
	tests := []struct{ c, f int }{
		{-20, -3}, // 32 + int(-35.997...) = 32 - 35
		{0, 32},
		{1, 33},
		{25, 76},
		{37, 98},
		{54, 129},
	}
	for _, tt := range tests {
		if got := Fahrenheit(tt.c); got != tt.f {
			t.Errorf("Fahrenheit(%d) = %d, want %d", tt.c, got, tt.f)
		}
	}
}

func TestForecastsShapeAndBounds(t *testing.T) {
	now := time.Date(2024, 12, 30, 23, 0, 0, 0, time.UTC)
	wantDates := []string{"2024-12-31", "2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"}
	seen := map[int]bool{}
	for range 2000 {
		fs := Forecasts(now)
		if len(fs) != Days {
			t.Fatalf("got %d forecasts, want %d", len(fs), Days)
		}
		for i, f := range fs {
			if f.Date != wantDates[i] {
				t.Fatalf("forecast %d date %s, want %s", i, f.Date, wantDates[i])
			}
			if f.TemperatureC < -20 || f.TemperatureC >= 55 {
				t.Fatalf("temperatureC %d outside [-20, 55)", f.TemperatureC)
			}
			if f.TemperatureF != Fahrenheit(f.TemperatureC) {
				t.Fatalf("temperatureF %d for C=%d", f.TemperatureF, f.TemperatureC)
			}
			if !slices.Contains(Summaries[:], f.Summary) {
				t.Fatalf("summary %q not a seed summary", f.Summary)
			}
			seen[f.TemperatureC] = true
		}
	}
	if !seen[-20] || !seen[54] {
		t.Errorf("10000 draws never hit an end of [-20, 54]: the range is off")
	}
}

// TestHandlerWaitsAUniformDelayWithinBounds reads the delay each request
// drew from the handler's debug log: every one within [min, max], the draws
// spread over the range (a constant or a swapped range fails), and no
// response sooner than its delay allows.
func TestHandlerWaitsAUniformDelayWithinBounds(t *testing.T) {
	const lo, hi, requests = 10 * time.Millisecond, 30 * time.Millisecond, 100
	var logged bytes.Buffer // slog's handlers serialise their writes
	h := Handler(slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})), lo, hi)

	took := make([]time.Duration, requests)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			start := time.Now()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/weatherforecast", nil))
			took[i] = time.Since(start)
		})
	}
	wg.Wait()

	var delays []time.Duration
	for line := range strings.Lines(logged.String()) {
		var rec struct {
			Msg   string
			Delay time.Duration
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Msg == "forecast requested" {
			delays = append(delays, rec.Delay)
		}
	}
	if len(delays) != requests {
		t.Fatalf("logged %d delays, want %d:\n%s", len(delays), requests, logged.String())
	}
	for _, d := range delays {
		if d < lo || d > hi {
			t.Fatalf("delay %s outside [%s, %s]", d, lo, hi)
		}
	}
	// Each quarter of the range is missed by 100 fair draws with
	// probability 0.75^100 ≈ 3e-13.
	if short, long := slices.Min(delays), slices.Max(delays); short > lo+(hi-lo)/4 || long < hi-(hi-lo)/4 {
		t.Errorf("delays span only [%s, %s] of [%s, %s]: not uniform over the range", short, long, lo, hi)
	}
	// Each response took at least its own delay, so the k-th fastest took
	// at least the k-th shortest delay.
	slices.Sort(took)
	slices.Sort(delays)
	for k := range took {
		if took[k] < delays[k] {
			t.Fatalf("the %d-th fastest response took %s, less than the %d-th shortest delay %s", k+1, took[k], k+1, delays[k])
		}
	}
}

func TestHandlerReturnsFiveForecastsAsJSON(t *testing.T) {
	h := Handler(slog.New(slog.NewTextHandler(io.Discard, nil)), 0, 0)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/weatherforecast", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var raw []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != Days {
		t.Fatalf("%d items", len(raw))
	}
	for _, k := range []string{"date", "temperatureC", "temperatureF", "summary"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("field %q missing in %v", k, raw[0])
		}
	}
}
