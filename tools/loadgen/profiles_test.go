package loadgen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/loadgen"
)

func shipped(t *testing.T) loadgen.Profiles {
	t.Helper()
	ps, err := loadgen.FindProfiles(".")
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// The seeds' k6 options, as the articles gave them, are what the shipped
// profiles say.
func TestShippedProfilesKeepTheSeedsLoad(t *testing.T) {
	ps := shipped(t)
	for _, tt := range []struct {
		name, executor string
		vus            int
		duration       time.Duration
		think          time.Duration
		method, path   string
	}{
		{"inflight", loadgen.ConstantVUs, 50, 600 * time.Second, time.Second, "GET", "/weatherforecast"}, // seed 000
		{"rps", loadgen.ConstantVUs, 16, 600 * time.Second, time.Second, "GET", "/"},                     // seed 001
		{"send", loadgen.SharedIterations, 1, 0, 0, "POST", "/send"},                                     // seed 004's /send
	} {
		p, ok := ps[tt.name]
		if !ok {
			t.Errorf("no profile %q", tt.name)
			continue
		}
		r := p.Requests[0]
		if p.Executor != tt.executor || p.VUs != tt.vus || time.Duration(p.Duration) != tt.duration ||
			p.Think() != tt.think || len(p.Requests) != 1 || r.Method != tt.method || r.Path != tt.path {
			t.Errorf("%s: %+v", tt.name, p)
		}
	}
	if !strings.Contains(string(ps["send"].Requests[0].Body), `"Messages"`) {
		t.Errorf("send's body %s has no Messages", ps["send"].Requests[0].Body)
	}
	if ps["ramp"].Executor != loadgen.RampingArrivalRate {
		t.Errorf("ramp: executor %q", ps["ramp"].Executor)
	}
	if _, ok := ps["smoke"]; !ok {
		t.Error("no smoke profile")
	}
}

// Every k6 script opens profiles.json and uses one of its profiles, and
// every profile has a script.
func TestEveryProfileHasAScript(t *testing.T) {
	root := svctest.RepoRoot(t)
	for _, name := range shipped(t).Names() {
		b, err := os.ReadFile(filepath.Join(root, "loadtest", name+".js"))
		if err != nil {
			t.Errorf("profile %q: %v", name, err)
			continue
		}
		if want := "parse(open('./profiles.json'))." + name + ";"; !strings.Contains(string(b), want) {
			t.Errorf("loadtest/%s.js does not read its profile (%s)", name, want)
		}
	}
}

func TestLoadProfilesRejectsWhatK6OrTheReplayWouldNot(t *testing.T) {
	const ok = `"requests": [{"name": "a", "method": "GET", "path": "/", "status": 200}], "thresholds": {"http_req_failed": ["rate<0.01"]}`
	for _, tt := range []struct{ json, want string }{
		{`{"x": {"executor": "constant-vu", "vus": 1, "duration": "1s", ` + ok + `}}`, `"constant-vu" is not one of`},
		{`{"x": {"executor": "constant-vus", "vu": 1, "duration": "1s", ` + ok + `}}`, `unknown field "vu"`},
		{`{"x": {"executor": "constant-vus", "vus": 1, "duration": "1 minute", ` + ok + `}}`, `duration "1 minute"`},
		{`{"x": {"executor": "constant-vus", "vus": 0, "duration": "1s", ` + ok + `}}`, "vus: must be at least 1"},
		{`{"x": {"executor": "ramping-arrival-rate", "timeUnit": "1s", "preAllocatedVUs": 1, "maxVUs": 1, "stages": [], ` + ok + `}}`, "stages: at least one"},
		{`{"x": {"executor": "constant-vus", "vus": 1, "duration": "1s", "requests": [{"name": "a", "method": "GETT", "path": "/", "status": 200}], "thresholds": {"checks": ["rate>0.9"]}}}`, "GET or POST"},
		{`{"x": {"executor": "constant-vus", "vus": 1, "duration": "1s", "requests": [{"name": "a", "method": "GET", "path": "/", "status": 200}], "thresholds": {"http_req_duraton": ["p(95)<1"]}}}`, "built-in metrics"},
	} {
		path := filepath.Join(t.TempDir(), "profiles.json")
		if err := os.WriteFile(path, []byte(tt.json), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := loadgen.LoadProfiles(path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s\n  got %v, want an error containing %q", tt.json, err, tt.want)
		}
	}
}
