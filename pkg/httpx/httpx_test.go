package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeJSONMapsBadBodiesToStatuses(t *testing.T) {
	type body struct{ Messages int }
	tests := []struct {
		name   string
		body   string
		limit  int64
		status int // 0 = success
		want   int
	}{
		{"exact case", `{"Messages": 3}`, 100, 0, 3},
		{"other case", `{"messages": 4}`, 100, 0, 4},
		{"empty", ``, 100, http.StatusBadRequest, 0},
		{"malformed", `{"Messages": }`, 100, http.StatusBadRequest, 0},
		{"wrong type", `{"Messages": "x"}`, 100, http.StatusBadRequest, 0},
		{"trailing value", `{"Messages": 1}{"Messages": 2}`, 100, http.StatusBadRequest, 0},
		{"too large", `{"Messages": 1, "pad": "` + strings.Repeat("x", 200) + `"}`, 50, http.StatusRequestEntityTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			req.Body = http.MaxBytesReader(rec, req.Body, tt.limit)
			var b body
			err := DecodeJSON(req, &b)
			if tt.status == 0 {
				if err != nil || b.Messages != tt.want {
					t.Fatalf("got %+v, %v", b, err)
				}
				return
			}
			WriteError(rec, err)
			var e ErrorBody
			if rec.Code != tt.status || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("got %d %q, want %d with a JSON error", rec.Code, rec.Body, tt.status)
			}
		})
	}
}

func TestRouterAnswersUnknownRoutesAndMethodsWithJSON(t *testing.T) {
	r := NewRouter()
	r.Get("/x", func(w http.ResponseWriter, _ *http.Request) {})
	for _, tt := range []struct {
		method, path string
		status       int
	}{{"GET", "/y", 404}, {"POST", "/x", 405}} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.status || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}
