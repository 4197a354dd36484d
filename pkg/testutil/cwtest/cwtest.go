// Package cwtest serves the CloudWatch stand-in (pkg/cwstandin) to a test
// on 127.0.0.1 and keeps the developer's AWS environment out of it.
//
//	cw := cwtest.New(t)
//	cwtest.ClearAWSEnv(t)
//	// ... code under test publishes to cw.URL ...
//	calls := cw.Calls() // PutMetricData requests, decoded
package cwtest

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
)

// Server is a cwstandin.Handler behind an httptest.Server: its Calls,
// Datapoints and LogEvents are what the stand-in received.
type Server struct {
	*cwstandin.Handler
	// URL is the endpoint of both CloudWatch and CloudWatch Logs,
	// http://127.0.0.1:PORT.
	URL string
}

// New starts the stand-in for the duration of t. Malformed and unsupported
// requests fail t with t.Errorf.
func New(t testing.TB, opts ...cwstandin.Option) *Server {
	t.Helper()
	h := cwstandin.NewHandler(func(err error) { t.Errorf("%v", err) }, opts...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{Handler: h, URL: srv.URL}
}

// awsEnvCleared are the variables that change how the SDK picks endpoints,
// profiles, retries and compression: ClearAWSEnv and SetDummyAWSEnv set
// them to "" (which the SDK treats as unset).
var awsEnvCleared = []string{
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_NEW_RETRIES_2026",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
	"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	"AWS_DISABLE_REQUEST_COMPRESSION", "AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES",
}

// ClearAWSEnv keeps the developer's AWS environment out of t: the shared
// config and credentials files point to a file that does not exist and the
// variables in awsEnvCleared are set to "". Tests that set the process
// environment cannot run in parallel (SetDummyAWSEnv is for TestMain).
func ClearAWSEnv(t testing.TB) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	for _, k := range awsEnvCleared {
		t.Setenv(k, "")
	}
}

// SetDummyAWSEnv is ClearAWSEnv for a whole test binary (call it from
// TestMain; dir is a directory the caller removes) plus static example
// credentials and no instance metadata: what the SDK's default chain needs
// to sign requests to the loopback stand-ins, in tests that run in
// parallel.
func SetDummyAWSEnv(dir string) error {
	none := filepath.Join(dir, "none")
	set := map[string]string{"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none}
	for _, k := range awsEnvCleared {
		set[k] = ""
	}
	set["AWS_ACCESS_KEY_ID"] = "AKIDEXAMPLE"
	set["AWS_SECRET_ACCESS_KEY"] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	set["AWS_EC2_METADATA_DISABLED"] = "true"
	for k, v := range set {
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("cwtest: %w", err)
		}
	}
	return nil
}
