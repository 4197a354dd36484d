// Package awsconfig loads the AWS SDK configuration from a service's getenv,
// so the standard variables work the same in a pod (IRSA / EKS Pod Identity
// through the default credential chain) and against a local emulator.
package awsconfig

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	pkgconfig "github.com/keda-eks-samples/workloads/pkg/config"
)

// Load reads AWS_REGION (or AWS_DEFAULT_REGION) and AWS_ENDPOINT_URL through
// getenv, and static keys when AWS_ACCESS_KEY_ID is set there; everything else
// comes from the SDK's default chain. Per-service endpoints are applied by
// Endpoint when a client is built.
func Load(ctx context.Context, getenv func(string) string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if ep := getenv("AWS_ENDPOINT_URL"); ep != "" {
		opts = append(opts, config.WithBaseEndpoint(ep))
	}
	if id := getenv("AWS_ACCESS_KEY_ID"); id != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			id, getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN"))))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, &pkgconfig.Error{Name: "AWS_REGION", Want: "an AWS region such as us-east-1"}
	}
	return cfg, nil
}

// Endpoint returns the service-specific endpoint override, AWS_ENDPOINT_URL_<ID>
// (e.g. AWS_ENDPOINT_URL_SQS), or nil to keep the configured one. Assign the
// result to the client's Options.BaseEndpoint.
func Endpoint(getenv func(string) string, serviceID string) *string {
	if ep := getenv("AWS_ENDPOINT_URL_" + serviceID); ep != "" {
		return aws.String(ep)
	}
	return nil
}
