package main

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func TestStartupLogShowsEveryConfigField(t *testing.T) {
	port := strconv.Itoa(svctest.FreePort(t))
	data := filepath.Join(t.TempDir(), "events.jsonl")
	svctest.ExpectStartupConfig(t, run, map[string]string{
		"HOST": "127.0.0.1", "PORT": port, "SHUTDOWN_TIMEOUT": "7s", "SHUTDOWN_DELAY": "0s",
		"MAX_BODY_BYTES": "2048", "LOG_LEVEL": "debug", "DATA_FILE": data,
	}, `{
		"server": {"host": "127.0.0.1", "port": `+port+`, "shutdown_timeout": "7s", "shutdown_delay": "0s", "max_body_bytes": 2048},
		"log": {"level": "DEBUG", "format": "json"},
		"data_file": "`+data+`"}`)
}
