package deploytests

import (
	"fmt"
	"os"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
)

// TestMain keeps the developer's AWS environment out of the whole package
// and gives KEDA's scalers (which resolve podIdentity aws through the AWS
// SDK's default chain) static dummy credentials, once for the process: the
// long signal tests then run in parallel, which t.Setenv forbids.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploytests-aws-")
	if err == nil {
		err = cwtest.SetDummyAWSEnv(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
