package weather

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
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

func TestDelayStaysWithinBounds(t *testing.T) {
	tests := []struct{ lo, hi time.Duration }{
		{0, 0},
		{5 * time.Millisecond, 5 * time.Millisecond},
		{0, 1500 * time.Millisecond},
		{100 * time.Millisecond, 200 * time.Millisecond},
		{time.Second, 0}, // inverted: config rejects it, Delay still returns lo
	}
	for _, tt := range tests {
		for range 1000 {
			d := Delay(tt.lo, tt.hi)
			if d < tt.lo || (tt.hi >= tt.lo && d > tt.hi) {
				t.Fatalf("Delay(%s, %s) = %s", tt.lo, tt.hi, d)
			}
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
