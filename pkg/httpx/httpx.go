// Package httpx holds the JSON request and response helpers and the router
// defaults every HTTP service shares, so that errors look the same everywhere:
// {"error": "..."} with the right 4xx status.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// NewRouter returns a chi router whose unknown routes and wrong methods answer
// with JSON errors instead of chi's plain-text defaults.
func NewRouter() *chi.Mux {
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		Error(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		Error(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
	})
	return r
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may have gone; nothing to do
}

// ErrorBody is the shape of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// Error writes {"error": msg} with status.
func Error(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, ErrorBody{Error: msg})
}

// StatusError is an error with the HTTP status it should be answered with.
type StatusError struct {
	Status int
	Err    error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// DecodeJSON decodes exactly one JSON value from the request body into dst.
// Field names match case-insensitively (as ASP.NET model binding does, which
// the original samples relied on). A body over the server's cap is a 413,
// anything malformed a 400; the returned *StatusError says which.
func DecodeJSON(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(dst)
	if err == nil {
		if extra := dec.Decode(&struct{}{}); extra != io.EOF {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return &StatusError{http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", tooBig.Limit)}
	case errors.Is(err, io.EOF):
		return &StatusError{http.StatusBadRequest, ErrEmptyBody}
	default:
		return &StatusError{http.StatusBadRequest, fmt.Errorf("malformed JSON body: %w", err)}
	}
}

// ErrEmptyBody is the error (inside a 400 StatusError) for a missing body.
var ErrEmptyBody = errors.New("request body is empty: want a JSON object")

// DecodeOptionalJSON is DecodeJSON for endpoints where the body may be
// absent (or only whitespace): it reports whether there was one.
func DecodeOptionalJSON(r *http.Request, dst any) (bool, error) {
	err := DecodeJSON(r, dst)
	if errors.Is(err, ErrEmptyBody) {
		return false, nil
	}
	return err == nil, err
}

// WriteError answers err with its StatusError status, or 500.
func WriteError(w http.ResponseWriter, err error) {
	var se *StatusError
	if errors.As(err, &se) {
		Error(w, se.Status, se.Error())
		return
	}
	Error(w, http.StatusInternalServerError, "internal error")
}
