package main

import (
	"strconv"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func TestStartupLogShowsEveryConfigField(t *testing.T) {
	port := strconv.Itoa(svctest.FreePort(t))
	svctest.ExpectStartupConfig(t, run, map[string]string{
		"HOST": "127.0.0.1", "PORT": port, "SHUTDOWN_TIMEOUT": "7s", "SHUTDOWN_DELAY": "0s",
		"MAX_BODY_BYTES": "2048", "LOG_LEVEL": "debug",
		"WEATHER_MIN_DELAY": "1ms", "WEATHER_MAX_DELAY": "2ms",
		"CLOUDWATCH_NAMESPACE": "TestNamespace", "POD_NAME": "pod-7",
	}, `{
		"server": {"host": "127.0.0.1", "port": `+port+`, "shutdown_timeout": "7s", "shutdown_delay": "0s", "max_body_bytes": 2048},
		"log": {"level": "DEBUG", "format": "json"},
		"min_delay": "1ms", "max_delay": "2ms", "namespace": "TestNamespace", "pod_name": "pod-7"}`)
}

// Pods deployed without the downward API must not merge into one Host
// series: POD_NAME defaults to the hostname, which is the pod's name.
func TestPodNameDefaultsToThePodsHostname(t *testing.T) {
	cfg, err := loadConfig(func(k string) string { return map[string]string{"HOSTNAME": "webapi-7d9f-x2"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PodName != "webapi-7d9f-x2" {
		t.Errorf("PodName = %q, want the hostname webapi-7d9f-x2", cfg.PodName)
	}
}
