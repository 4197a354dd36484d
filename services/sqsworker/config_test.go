package main

import (
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func TestStartupLogShowsEveryConfigField(t *testing.T) {
	svctest.ExpectServerStartupConfig(t, run, map[string]string{
		"AWS_REGION": "us-east-1", "QUEUE_URL": "http://127.0.0.1:1/000000000000/startup", "WORKER_CONCURRENCY": "3",
		"SQS_WAIT_TIME": "2s", "SQS_VISIBILITY_TIMEOUT": "40s", "DELETE_FLUSH_INTERVAL": "250ms",
		"SQS_MAX_BACKOFF": "3s", "PROCESS_MIN_DELAY": "1ms", "PROCESS_MAX_DELAY": "2ms", "SEND_CONCURRENCY": "5",
	}, `{
		"worker": {"queue_url": "http://127.0.0.1:1/000000000000/startup", "concurrency": 3, "wait_time": "2s",
			"visibility_timeout": "40s", "delete_flush": "250ms", "max_backoff": "3s"},
		"min_delay": "1ms", "max_delay": "2ms", "send_concurrency": 5}`)
}

func TestBadConfigExitsTwoNamingTheVariable(t *testing.T) {
	base := svctest.Env(t, map[string]string{"QUEUE_URL": "http://127.0.0.1:1/000000000000/q", "AWS_REGION": "us-east-1"})
	svctest.ExpectConfigErrors(t, base, [][2]string{
		{"QUEUE_URL", ""}, {"QUEUE_URL", "not a url"}, {"WORKER_CONCURRENCY", "0"},
		{"SQS_WAIT_TIME", "1500ms"}, {"PROCESS_MAX_DELAY", "soon"},
		{"SQS_WAIT_TIME", "20s"},         // a 20s poll cannot end inside the default 20s budget
		{"DELETE_FLUSH_INTERVAL", "16s"}, // over half the default 30s visibility timeout
	})
	t.Run("DELETE_FLUSH_INTERVAL=600ms with SQS_VISIBILITY_TIMEOUT=1s", func(t *testing.T) {
		svctest.ExpectConfigError(t, svctest.Env(t, map[string]string{"QUEUE_URL": "http://127.0.0.1:1/000000000000/q",
			"AWS_REGION": "us-east-1", "SQS_VISIBILITY_TIMEOUT": "1s", "DELETE_FLUSH_INTERVAL": "600ms"}), "DELETE_FLUSH_INTERVAL")
	})
}
