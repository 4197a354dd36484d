package main

import (
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/config"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func TestStartupLogShowsEveryConfigField(t *testing.T) {
	svctest.ExpectServerStartupConfig(t, run, map[string]string{
		"WEATHER_MIN_DELAY": "1ms", "WEATHER_MAX_DELAY": "2ms", "CLOUDWATCH_NAMESPACE": "TestNamespace", "POD_NAME": "pod-7",
	}, `{
		"min_delay": "1ms", "max_delay": "2ms", "namespace": "TestNamespace", "pod_name": "pod-7"}`)
}

func TestBadConfigExitsTwoNamingTheVariable(t *testing.T) {
	svctest.ExpectConfigErrors(t, svctest.Env(t, nil), [][2]string{
		{"WEATHER_MAX_DELAY", "soon"}, {"PORT", "70000"}, {"LOG_LEVEL", "loud"}, {"SHUTDOWN_TIMEOUT", "-1s"},
		{"OTEL_METRICS_EXPORTER", "carrier-pigeon"},
	})
}

// Pods deployed without the downward API must not merge into one Host
// series: POD_NAME defaults to the hostname, which is the pod's name.
func TestPodNameDefaultsToThePodsHostname(t *testing.T) {
	var cfg Config
	if err := config.Load(func(k string) string { return map[string]string{"HOSTNAME": "webapi-7d9f-x2"}[k] }, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.PodName != "webapi-7d9f-x2" {
		t.Errorf("PodName = %q, want the hostname webapi-7d9f-x2", cfg.PodName)
	}
}
