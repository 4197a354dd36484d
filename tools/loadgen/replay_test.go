package loadgen_test

import (
	"context"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/loadgen"
)

// Must-show 6b: the smoke scenario of loadtest/smoke.js, replayed from the
// same profiles.json against the real webapi (its default 0-1.5 s delay),
// passes the script's own thresholds.
func TestSmokeReplayAgainstWebapiMeetsTheScriptsThresholds(t *testing.T) {
	p := shipped(t)["smoke"]
	bin := svctest.Build(t, "services/webapi")
	env := svctest.Env(t, nil)
	proc := svctest.StartBinary(t, bin, env)
	url := "http://127.0.0.1:" + env["PORT"]
	proc.WaitReady(t, url)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := loadgen.Runner{BaseURL: url}.Run(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := res.Check(p.Thresholds)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("smoke: %d VUs for %v, %d requests in %v", p.VUs, time.Duration(p.Duration), res.Count(""), res.Elapsed.Round(time.Millisecond))
	for _, o := range out {
		t.Log(o)
		if !o.OK {
			t.Errorf("threshold not met: %v", o)
		}
	}
	// Each VU's iteration is the mix (at most 1.5 s + a fast GET /) and the
	// think time, so every VU completes at least duration / (think + 1.5 s)
	// whole iterations, each request of the mix once.
	perVU := int(time.Duration(p.Duration).Seconds() / (p.ThinkTime + 1.5))
	for _, r := range p.Requests {
		if n := res.Count(r.Name); n < p.VUs*perVU {
			t.Errorf("%d %s requests, want at least %d (%d VUs × %d iterations)", n, r.Name, p.VUs*perVU, p.VUs, perVU)
		}
	}
	// The script's thresholds are on the error rate and the latency.
	for _, metric := range []string{"http_req_failed", "http_req_duration"} {
		if len(p.Thresholds[metric]) == 0 {
			t.Errorf("the smoke profile has no threshold on %s", metric)
		}
	}
}
