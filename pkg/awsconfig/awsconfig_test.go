package awsconfig

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keda-eks-samples/workloads/pkg/config"
)

// Isolate from the developer's AWS files and variables: the SDK reads those
// from the process environment whatever getenv says.
func isolate(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	for _, k := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
	}
}

func TestLoadHonoursTheStandardVariablesThroughGetenv(t *testing.T) {
	isolate(t)
	tests := []struct {
		name       string
		env        map[string]string
		region     string
		endpoint   string
		staticKey  string
		configErr  bool
		sqsOverlay string
	}{
		{"region", map[string]string{"AWS_REGION": "eu-west-1"}, "eu-west-1", "", "", false, ""},
		{"default region", map[string]string{"AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1", "", "", false, ""},
		{"AWS_REGION wins", map[string]string{"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "ap-south-1"}, "us-east-2", "", "", false, ""},
		{"endpoint and keys", map[string]string{"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
			"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9324"},
			"us-east-1", "http://127.0.0.1:4566", "AKID", false, "http://127.0.0.1:9324"},
		{"no region", map[string]string{}, "", "", "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			cfg, err := Load(context.Background(), getenv)
			if tt.configErr {
				var ce *config.Error
				if !errors.As(err, &ce) || ce.Name != "AWS_REGION" {
					t.Fatalf("want a config error naming AWS_REGION, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != tt.region || aws.ToString(cfg.BaseEndpoint) != tt.endpoint {
				t.Errorf("region %q endpoint %q", cfg.Region, aws.ToString(cfg.BaseEndpoint))
			}
			if tt.staticKey != "" {
				creds, err := cfg.Credentials.Retrieve(context.Background())
				if err != nil || creds.AccessKeyID != tt.staticKey {
					t.Errorf("credentials %q, %v", creds.AccessKeyID, err)
				}
			}
			if got := aws.ToString(Endpoint(getenv, "SQS")); got != tt.sqsOverlay {
				t.Errorf("Endpoint(SQS) = %q, want %q", got, tt.sqsOverlay)
			}
		})
	}
}
