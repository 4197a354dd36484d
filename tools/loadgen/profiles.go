// Package loadgen generates HTTP load from Go the way the k6 scripts in
// loadtest/ do, so that tests, `make preview` and `make demo` can drive the
// services without k6 (AGPL: we ship k6 scripts, never k6 itself).
//
// The profiles are read from loadtest/profiles.json, the file the k6 scripts
// open() in their init context: one source for the numbers (virtual users,
// durations, think time, arrival-rate stages, the request mix and the
// thresholds). Two executors are replayed as k6 defines them:
//
//   - constant-vus: N goroutines, each a virtual user that sends the mix in
//     order and then thinks (VUs). With no think time and slow requests it
//     holds N requests in flight.
//   - ramping-arrival-rate (and a constant rate): iterations started at a
//     rate that does not depend on how fast the target answers, with the
//     vegeta library (Rate).
//
// shared-iterations runs a fixed number of passes over the mix (Iterations).
// Result.Check evaluates a profile's k6 thresholds on what was measured.
package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ProfilesFile is where the profiles live, relative to the repository root.
const ProfilesFile = "loadtest/profiles.json"

// The executors profiles.json may name (k6's names).
const (
	ConstantVUs        = "constant-vus"
	RampingArrivalRate = "ramping-arrival-rate"
	SharedIterations   = "shared-iterations"
)

// Request is one request of a profile's mix.
type Request struct {
	Name   string          `json:"name"`   // k6's name tag; thresholds select it as metric{name:<Name>}
	Method string          `json:"method"` // GET or POST
	Path   string          `json:"path"`   // appended to the base URL
	Body   json.RawMessage `json:"body,omitempty"`
	Status int             `json:"status"` // what the check expects
}

// Stage is one leg of a ramping-arrival-rate profile: the rate moves
// linearly to Target (iterations per time unit) over Duration.
type Stage struct {
	Target   float64  `json:"target"`
	Duration Duration `json:"duration"`
}

// Profile is one entry of profiles.json. Which fields apply depends on
// Executor (Validate says which are required).
type Profile struct {
	Executor string `json:"executor"`

	// constant-vus, shared-iterations
	VUs       int      `json:"vus,omitempty"`
	Duration  Duration `json:"duration,omitzero"`
	ThinkTime float64  `json:"thinkTime,omitempty"` // seconds, as k6's sleep()

	// ramping-arrival-rate
	StartRate       float64  `json:"startRate,omitempty"`
	TimeUnit        Duration `json:"timeUnit,omitzero"`
	PreAllocatedVUs int      `json:"preAllocatedVUs,omitempty"`
	MaxVUs          int      `json:"maxVUs,omitempty"`
	Stages          []Stage  `json:"stages,omitempty"`

	// shared-iterations
	Iterations  int      `json:"iterations,omitempty"`
	MaxDuration Duration `json:"maxDuration,omitzero"`

	Requests   []Request           `json:"requests"`
	Thresholds map[string][]string `json:"thresholds"`
}

// Think is the think time as a duration.
func (p Profile) Think() time.Duration {
	return time.Duration(p.ThinkTime * float64(time.Second))
}

// Validate reports the first field that k6 would reject or that this
// package could not replay.
func (p Profile) Validate() error {
	var errs []error
	need := func(ok bool, field, what string) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %s", field, what))
		}
	}
	switch p.Executor {
	case ConstantVUs:
		need(p.VUs > 0, "vus", "must be at least 1")
		need(p.Duration > 0, "duration", "must be positive")
		need(p.Stages == nil && p.Iterations == 0, "executor", "constant-vus takes vus, duration and thinkTime only")
	case RampingArrivalRate:
		need(p.TimeUnit > 0, "timeUnit", "must be positive")
		need(len(p.Stages) > 0, "stages", "at least one")
		need(p.PreAllocatedVUs > 0, "preAllocatedVUs", "must be at least 1")
		need(p.MaxVUs >= p.PreAllocatedVUs, "maxVUs", "at least preAllocatedVUs")
		need(p.StartRate >= 0, "startRate", "must not be negative")
		for i, s := range p.Stages {
			need(s.Target >= 0 && s.Duration > 0, fmt.Sprintf("stages[%d]", i), "target ≥ 0 and a positive duration")
		}
		need(p.ThinkTime == 0 && p.VUs == 0, "executor", "ramping-arrival-rate takes no vus or thinkTime")
	case SharedIterations:
		need(p.VUs > 0, "vus", "must be at least 1")
		need(p.Iterations >= p.VUs, "iterations", "at least vus")
		need(p.MaxDuration > 0, "maxDuration", "must be positive")
	default:
		errs = append(errs, fmt.Errorf("executor: %q is not one of %s, %s, %s", p.Executor, ConstantVUs, RampingArrivalRate, SharedIterations))
	}
	need(len(p.Requests) > 0, "requests", "at least one")
	for i, r := range p.Requests {
		field := fmt.Sprintf("requests[%d]", i)
		need(r.Name != "", field+".name", "required (thresholds select requests by it)")
		need(r.Method == http.MethodGet || r.Method == http.MethodPost, field+".method", "GET or POST")
		need(strings.HasPrefix(r.Path, "/"), field+".path", "must start with /")
		need(r.Status >= 100 && r.Status <= 599, field+".status", "an HTTP status")
	}
	need(len(p.Thresholds) > 0, "thresholds", "at least one")
	for metric, exprs := range p.Thresholds {
		for _, e := range exprs {
			if _, err := parseThreshold(metric, e); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Profiles is profiles.json: scenario name → profile.
type Profiles map[string]Profile

// Names returns the profile names in order.
func (ps Profiles) Names() []string {
	return slices.Sorted(maps.Keys(ps))
}

// LoadProfiles reads and validates a profiles file; an unknown field is an
// error (a misspelt key would otherwise be silently ignored by k6's JSON.parse).
func LoadProfiles(path string) (Profiles, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ps Profiles
	if err := dec.Decode(&ps); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%s: no profiles", path)
	}
	for _, name := range ps.Names() {
		if err := ps[name].Validate(); err != nil {
			return nil, fmt.Errorf("%s: profile %q: %w", path, name, err)
		}
	}
	return ps, nil
}

// FindProfiles loads ProfilesFile from the repository holding dir: dir or
// the nearest parent with a go.work.
func FindProfiles(dir string) (Profiles, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return LoadProfiles(filepath.Join(d, ProfilesFile))
		}
		if filepath.Dir(d) == d {
			return nil, fmt.Errorf("no go.work at or above %s", dir)
		}
	}
}

// Duration is a time.Duration written as k6 writes it ("600s", "1m").
type Duration time.Duration

// UnmarshalJSON reads a Go duration string (k6's "10s", "1m", "1m30s").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}
