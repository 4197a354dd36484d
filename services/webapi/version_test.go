package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/otlptest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// versionVar is the -X symbol `make build` stamps, read from the Makefile so
// that this test fails if the Makefile names a variable that does not exist.
func versionVar(t *testing.T) string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(svctest.RepoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VERSION_VAR\s*:?=\s*(\S+)\s*$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no VERSION_VAR in the Makefile")
	}
	return string(m[1])
}

func TestBinaryStampedWithAVersionShowsItInHealthzTheLogAndTheOTelResource(t *testing.T) {
	const version = "v9.8.7-stamped"
	bin := svctest.Build(t, "services/webapi", "-ldflags=-X "+versionVar(t)+"="+version)
	recv := otlptest.New(t)
	otel := recv.Env("100")
	otel["LOG_FORMAT"], otel["WEATHER_MAX_DELAY"] = "json", "0s"
	env := svctest.Env(t, otel)
	url := "http://127.0.0.1:" + env["PORT"]
	p := svctest.StartBinary(t, bin, env)
	p.WaitReady(t, url)

	code, body := svctest.Get(t, url+"/healthz")
	var health struct{ Status, Version string }
	if err := json.Unmarshal([]byte(body), &health); err != nil || code != http.StatusOK || health.Version != version {
		t.Errorf("GET /healthz = %d %s, want version %q", code, body, version)
	}

	logged := false
	for line := range strings.Lines(p.Output.String()) {
		var rec struct{ Msg, Version string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "starting" {
			logged = rec.Version == version
			break
		}
	}
	if !logged {
		t.Errorf("no start-up record with version %q:\n%s", version, p.Output)
	}

	svctest.Get(t, url+"/") // something to export
	var res map[string]string
	if err := localproc.Poll(15*time.Second, func() (bool, error) {
		var ok bool
		res, ok = recv.Resource(serviceName)
		return ok, nil
	}); err != nil || res["service.version"] != version {
		t.Errorf("OTel resource on the wire = %v (%v), want service.version %q", res, err, version)
	}
}
