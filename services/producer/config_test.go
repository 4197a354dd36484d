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

func TestBadConfigExitsTwoNamingTheVariable(t *testing.T) {
	base := map[string]string{"QUEUE_URL": "http://127.0.0.1:1/000000000000/q", "AWS_REGION": "us-east-1"}
	svctest.ExpectConfigErrors(t, base, [][2]string{
		{"NUM_MESSAGES", "0"}, {"NUM_MESSAGES", "-1"}, {"NUM_MESSAGES", "abc"}, {"NUM_MESSAGES", "100001"},
		{"SEND_CONCURRENCY", "0"}, {"QUEUE_URL", ""},
	})
}
