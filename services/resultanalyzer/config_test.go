package main

import (
	"path/filepath"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func TestStartupLogShowsEveryConfigField(t *testing.T) {
	data := filepath.Join(t.TempDir(), "events.jsonl")
	svctest.ExpectServerStartupConfig(t, run, map[string]string{"DATA_FILE": data}, `{"data_file": "`+data+`"}`)
}

func TestBadConfigExitsTwoNamingTheVariable(t *testing.T) {
	svctest.ExpectConfigErrors(t, svctest.Env(t, nil), [][2]string{
		{"PORT", "abc"}, {"MAX_BODY_BYTES", "0"}, {"LOG_FORMAT", "xml"}, {"DATA_FILE", "/var/lib/resultanalyzer/"},
	})
}
