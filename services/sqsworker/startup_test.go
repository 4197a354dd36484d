package main

import (
	"strconv"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func TestStartupLogShowsEveryConfigField(t *testing.T) {
	port := strconv.Itoa(svctest.FreePort(t))
	svctest.ExpectStartupConfig(t, run, map[string]string{
		"HOST": "127.0.0.1", "PORT": port, "SHUTDOWN_TIMEOUT": "30s", "SHUTDOWN_DELAY": "0s",
		"MAX_BODY_BYTES": "2048", "LOG_LEVEL": "debug", "AWS_REGION": "us-east-1",
		"QUEUE_URL": "http://127.0.0.1:1/000000000000/startup", "WORKER_CONCURRENCY": "3",
		"SQS_WAIT_TIME": "2s", "SQS_VISIBILITY_TIMEOUT": "40s", "DELETE_FLUSH_INTERVAL": "250ms",
		"SQS_MAX_BACKOFF": "3s", "PROCESS_MIN_DELAY": "1ms", "PROCESS_MAX_DELAY": "2ms", "SEND_CONCURRENCY": "5",
	}, `{
		"server": {"host": "127.0.0.1", "port": `+port+`, "shutdown_timeout": "30s", "shutdown_delay": "0s", "max_body_bytes": 2048},
		"log": {"level": "DEBUG", "format": "json"},
		"worker": {"queue_url": "http://127.0.0.1:1/000000000000/startup", "concurrency": 3, "wait_time": "2s",
			"visibility_timeout": "40s", "delete_flush": "250ms", "max_backoff": "3s"},
		"min_delay": "1ms", "max_delay": "2ms", "send_concurrency": 5}`)
}
