package main

import (
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func TestStartupLogShowsEveryConfigField(t *testing.T) {
	svctest.ExpectStartupConfig(t, run, map[string]string{
		"AWS_REGION": "us-east-1", "QUEUE_URL": "http://127.0.0.1:1/000000000000/startup", "JOB_ID": "job-7",
		"SQS_VISIBILITY_TIMEOUT": "45", "SQS_WAIT_TIME": "3s", "IDLE_TIMEOUT": "90s", "PROCESS_SLEEP_TIME": "1.5",
		"SHUTDOWN_TIMEOUT": "12s", "QUALITY_SCALING": "linear",
		"RESULT_ANALYZER_URL": "http://analyst:s3cret@127.0.0.1:1",
	}, `{
		"job": {"queue_url": "http://127.0.0.1:1/000000000000/startup", "job_id": "job-7", "visibility": "45s",
			"wait_time": "3s", "idle_timeout": "1m30s", "encode_time": "1.5s", "scaling": "linear", "finish_timeout": "12s"},
		"result_analyzer_url": "http://analyst:xxxxx@127.0.0.1:1"}`)
}

func TestBadConfigExitsTwoNamingTheVariable(t *testing.T) {
	base := map[string]string{"QUEUE_URL": "http://127.0.0.1:1/000000000000/q", "AWS_REGION": "us-east-1"}
	svctest.ExpectConfigErrors(t, base, [][2]string{
		{"QUEUE_URL", ""}, {"PROCESS_SLEEP_TIME", "abc"}, {"PROCESS_SLEEP_TIME", "-1"},
		{"SQS_VISIBILITY_TIMEOUT", "1.5"}, {"SQS_VISIBILITY_TIMEOUT", "13h"}, {"SQS_WAIT_TIME", "21"},
		{"IDLE_TIMEOUT", "0"}, {"QUALITY_SCALING", "cubic"}, {"RESULT_ANALYZER_URL", "ftp://analyzer"},
		{"SHUTDOWN_TIMEOUT", "soon"}, {"LOG_LEVEL", "loud"},
	})
}
