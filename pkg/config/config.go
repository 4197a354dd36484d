// Package config reads typed settings from the environment.
//
// A service reads its whole configuration with Load: one Reader over its
// getenv function, every field read with a default and a range by the
// config's ReadEnv, and the errors returned once at the end. Every bad value
// is collected (not just the first), and each error names the variable, the
// value and what would have been accepted, because a wrong variable is the
// most common first error a user of these samples makes.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Error is a single invalid or missing environment variable.
type Error struct {
	Name  string // the variable, e.g. "PORT"
	Value string // what was set ("" when missing)
	Want  string // what would be accepted
}

func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("config: %s is required: want %s", e.Name, e.Want)
	}
	return fmt.Sprintf("config: %s=%q is invalid: want %s", e.Name, e.Value, e.Want)
}

// IsConfig reports whether err contains a configuration error; programs exit
// with status 2 for those.
func IsConfig(err error) bool {
	var ce *Error
	return errors.As(err, &ce)
}

// Settings is a configuration struct that reads itself: every field with a
// default and a range, then the checks across fields (Reader.Fail).
type Settings interface{ ReadEnv(r *Reader) }

// Load reads dst through getenv with one Reader, as json.Unmarshal fills a
// value, and returns every bad variable at once, joined (nil when all is
// well). It is the one place Err is called, so no program can forget it.
func Load(getenv func(string) string, dst Settings) error {
	r := New(getenv)
	dst.ReadEnv(r)
	return r.Err()
}

// Reader reads variables through getenv and collects errors.
type Reader struct {
	getenv func(string) string
	errs   []error
}

// New returns a Reader over getenv (os.Getenv in main, a map in tests).
func New(getenv func(string) string) *Reader {
	return &Reader{getenv: getenv}
}

// Err returns every error collected so far, joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Fail records a custom error for name, for cross-field validation.
func (r *Reader) Fail(name, value, want string) {
	r.errs = append(r.errs, &Error{Name: name, Value: value, Want: want})
}

func (r *Reader) lookup(name string) (string, bool) {
	v := strings.TrimSpace(r.getenv(name))
	return v, v != ""
}

// String returns the variable or def when unset.
func (r *Reader) String(name, def string) string {
	if v, ok := r.lookup(name); ok {
		return v
	}
	return def
}

// Required returns the variable and records an error when it is unset.
func (r *Reader) Required(name, want string) string {
	v, ok := r.lookup(name)
	if !ok {
		r.Fail(name, "", want)
	}
	return v
}

// OneOf returns the variable (case-insensitive match, returned in its
// canonical spelling) or def; anything else is an error.
func (r *Reader) OneOf(name, def string, allowed ...string) string {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	if i := slices.IndexFunc(allowed, func(a string) bool { return strings.EqualFold(a, v) }); i >= 0 {
		return allowed[i]
	}
	r.Fail(name, v, "one of "+strings.Join(allowed, ", "))
	return def
}

// Int returns an integer in [lo, hi] or def.
func (r *Reader) Int(name string, def, lo, hi int) int {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.Fail(name, v, fmt.Sprintf("an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

// Duration returns a Go duration ("1.5s", "250ms") in [lo, hi] or def.
func (r *Reader) Duration(name string, def, lo, hi time.Duration) time.Duration {
	return r.duration(name, def, lo, hi, false)
}

// Seconds is like Duration but also accepts a bare number of seconds ("60",
// "0.5"), the form the original shell samples used.
func (r *Reader) Seconds(name string, def, lo, hi time.Duration) time.Duration {
	return r.duration(name, def, lo, hi, true)
}

func (r *Reader) duration(name string, def, lo, hi time.Duration, bare bool) time.Duration {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil && bare {
		var f float64
		if f, err = strconv.ParseFloat(v, 64); err == nil {
			d = time.Duration(f * float64(time.Second))
		}
	}
	if err != nil || d < lo || d > hi {
		want := fmt.Sprintf("a Go duration from %s to %s", lo, hi)
		if bare {
			want = fmt.Sprintf("seconds or a Go duration from %s to %s", lo, hi)
		}
		r.Fail(name, v, want)
		return def
	}
	return d
}

// WholeSeconds is like Seconds but only takes whole seconds, the unit SQS
// takes a visibility timeout or a long poll in ("1.5" is an error, not 1s).
func (r *Reader) WholeSeconds(name string, def, lo, hi time.Duration) time.Duration {
	d := r.Seconds(name, def, lo, hi)
	if d%time.Second != 0 {
		v, _ := r.lookup(name)
		r.Fail(name, v, "whole seconds from "+lo.String()+" to "+hi.String())
		return def
	}
	return d
}

// Hostname is the default of a variable that names this pod (a metric
// dimension, a job id): Kubernetes makes a pod's hostname its name and sets
// HOSTNAME to it, so pods deployed without the downward API still tell
// themselves apart. HOSTNAME is read through getenv, then os.Hostname;
// fallback only when neither is known.
func (r *Reader) Hostname(fallback string) string {
	if h, ok := r.lookup("HOSTNAME"); ok {
		return h
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return fallback
}

// URL returns an absolute http(s) URL or def; required when def is "".
func (r *Reader) URL(name, def string) string {
	v, ok := r.lookup(name)
	if !ok {
		if def == "" {
			r.Fail(name, "", wantURL)
		}
		return def
	}
	if !isHTTPURL(v) {
		r.Fail(name, v, wantURL)
		return def
	}
	return v
}

// OptionalURL returns "" when the variable is unset (the feature it points
// to is off), an absolute http(s) URL otherwise; anything else is an error.
func (r *Reader) OptionalURL(name string) string {
	v, ok := r.lookup(name)
	if !ok {
		return ""
	}
	if !isHTTPURL(v) {
		r.Fail(name, v, wantURL)
		return ""
	}
	return v
}

const wantURL = "an absolute http(s) URL"

func isHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
