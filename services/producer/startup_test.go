package main

import (
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func TestStartupLogShowsEveryConfigField(t *testing.T) {
	svctest.ExpectStartupConfig(t, run, map[string]string{
		"AWS_REGION": "us-east-1", "QUEUE_URL": "http://127.0.0.1:1/000000000000/startup", "NUM_MESSAGES": "3", "SEND_CONCURRENCY": "2",
	}, `{
		"queue_url": "http://127.0.0.1:1/000000000000/startup", "num_messages": 3, "concurrency": 2}`)
}
