package deploytests

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/iamgen"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

const paramsFile = "deploy/kustomize/params/params.env"

// readParams reads params.env (keys in order).
func readParams(t testing.TB, path string) ([]string, map[string]string) {
	t.Helper()
	vals, keys, err := iamgen.ReadParams(path)
	if err != nil {
		t.Fatal(err)
	}
	return keys, vals
}

// changed is a value of every parameter unlike any default.
var changed = map[string]string{
	"NAMESPACE":              "scaling-lab",
	"AWS_ACCOUNT_ID":         "999988887777",
	"AWS_REGION":             "eu-west-3",
	"EKS_CLUSTER_NAME":       "scaling-lab-cluster",
	"ECR_REGISTRY":           "999988887777.dkr.ecr.eu-west-3.amazonaws.com/team-x",
	"IMAGE_TAG":              "v9.8.7-rc1",
	"SQS_WORKER_QUEUE_URL":   "https://sqs.eu-west-3.amazonaws.com/999988887777/lab-work",
	"VIDEO_QUEUE_URL":        "https://sqs.eu-west-3.amazonaws.com/999988887777/lab-video",
	"WEBAPI_ROLE_ARN":        "arn:aws:iam::999988887777:role/lab-webapi",
	"COLLECTOR_ROLE_ARN":     "arn:aws:iam::999988887777:role/lab-collector",
	"SQSWORKER_ROLE_ARN":     "arn:aws:iam::999988887777:role/lab-sqsworker",
	"VIDEOENCODER_ROLE_ARN":  "arn:aws:iam::999988887777:role/lab-videoencoder",
	"PRODUCER_ROLE_ARN":      "arn:aws:iam::999988887777:role/lab-producer",
	"KEDA_OPERATOR_ROLE_ARN": "arn:aws:iam::999988887777:role/lab-keda",
	"AMP_WORKSPACE_ID":       "ws-99999999-8888-7777-6666-555555555555",
	"EKS_OIDC_PROVIDER":      "oidc.eks.eu-west-3.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF",
	"CLOUDWATCH_NAMESPACE":   "Lab/Http",
}

// reach: where each parameter must land, per overlay, as "Kind/name path"
// with path in kustomize's fieldPath syntax. Parameters that no manifest
// needs (the account id and the KEDA operator's role) reach the IAM
// documents instead (TestIAMDocuments).
var reach = map[string]map[string][]string{
	"AWS_REGION": {
		"sidecar": {
			"Deployment/webapi spec.template.spec.initContainers.[name=otel-collector].env.[name=AWS_REGION].value",
			"ScaledObject/webapi spec.triggers.[type=aws-cloudwatch].metadata.awsRegion",
		},
		"gateway": {
			"Deployment/otel-collector spec.template.spec.containers.[name=otel-collector].env.[name=AWS_REGION].value",
			"ScaledObject/webapi spec.triggers.[type=aws-cloudwatch].metadata.awsRegion",
		},
		"cloudwatch-direct": {
			"Deployment/webapi spec.template.spec.containers.[name=webapi].env.[name=AWS_REGION].value",
			"ScaledObject/webapi spec.triggers.[type=aws-cloudwatch].metadata.awsRegion",
		},
		"amp": {
			"Deployment/otel-collector spec.template.spec.containers.[name=otel-collector].env.[name=AWS_REGION].value",
			"Deployment/otel-collector spec.template.spec.containers.[name=otel-collector].env.[name=AMP_REMOTE_WRITE_URL].value",
			"ScaledObject/webapi spec.triggers.[type=prometheus].metadata.awsRegion",
			"ScaledObject/webapi spec.triggers.[type=prometheus].metadata.serverAddress",
		},
		"sqs-worker": {
			"Deployment/sqsworker spec.template.spec.containers.[name=sqsworker].env.[name=AWS_REGION].value",
			"ScaledObject/sqsworker spec.triggers.[type=aws-sqs-queue].metadata.awsRegion",
		},
		"video-encoder": {
			"ScaledJob/videoencoder spec.jobTargetRef.template.spec.containers.[name=videoencoder].env.[name=AWS_REGION].value",
			"Job/producer spec.template.spec.containers.[name=producer].env.[name=AWS_REGION].value",
			"ScaledJob/videoencoder spec.triggers.[type=aws-sqs-queue].metadata.awsRegion",
		},
	},
	"CLOUDWATCH_NAMESPACE": {
		"sidecar": {
			"Deployment/webapi spec.template.spec.initContainers.[name=otel-collector].env.[name=CLOUDWATCH_NAMESPACE].value",
			"ScaledObject/webapi spec.triggers.[type=aws-cloudwatch].metadata.expression",
		},
		"gateway": {
			"Deployment/otel-collector spec.template.spec.containers.[name=otel-collector].env.[name=CLOUDWATCH_NAMESPACE].value",
			"ScaledObject/webapi spec.triggers.[type=aws-cloudwatch].metadata.expression",
		},
		"cloudwatch-direct": {
			"Deployment/webapi spec.template.spec.containers.[name=webapi].env.[name=CLOUDWATCH_NAMESPACE].value",
			"ScaledObject/webapi spec.triggers.[type=aws-cloudwatch].metadata.expression",
		},
	},
	"SQS_WORKER_QUEUE_URL": {
		"sqs-worker": {
			"Deployment/sqsworker spec.template.spec.containers.[name=sqsworker].env.[name=QUEUE_URL].value",
			"ScaledObject/sqsworker spec.triggers.[type=aws-sqs-queue].metadata.queueURL",
		},
	},
	"VIDEO_QUEUE_URL": {
		"video-encoder": {
			"ScaledJob/videoencoder spec.jobTargetRef.template.spec.containers.[name=videoencoder].env.[name=QUEUE_URL].value",
			"Job/producer spec.template.spec.containers.[name=producer].env.[name=QUEUE_URL].value",
			"ScaledJob/videoencoder spec.triggers.[type=aws-sqs-queue].metadata.queueURL",
		},
	},
	"AMP_WORKSPACE_ID": {
		"amp": {
			"Deployment/otel-collector spec.template.spec.containers.[name=otel-collector].env.[name=AMP_REMOTE_WRITE_URL].value",
			"ScaledObject/webapi spec.triggers.[type=prometheus].metadata.serverAddress",
		},
	},
	"WEBAPI_ROLE_ARN":       {"cloudwatch-direct": {`ServiceAccount/webapi metadata.annotations.eks\.amazonaws\.com/role-arn`}},
	"SQSWORKER_ROLE_ARN":    {"sqs-worker": {`ServiceAccount/sqsworker metadata.annotations.eks\.amazonaws\.com/role-arn`}},
	"VIDEOENCODER_ROLE_ARN": {"video-encoder": {`ServiceAccount/videoencoder metadata.annotations.eks\.amazonaws\.com/role-arn`}},
	"PRODUCER_ROLE_ARN":     {"video-encoder": {`ServiceAccount/producer metadata.annotations.eks\.amazonaws\.com/role-arn`}},
	"COLLECTOR_ROLE_ARN": {
		"sidecar": {`ServiceAccount/otel-collector metadata.annotations.eks\.amazonaws\.com/role-arn`},
		"gateway": {`ServiceAccount/otel-collector metadata.annotations.eks\.amazonaws\.com/role-arn`},
		"amp":     {`ServiceAccount/otel-collector metadata.annotations.eks\.amazonaws\.com/role-arn`},
	},
}

// notInManifests are parameters only the IAM documents, the eksctl
// ClusterConfig and the Makefile use.
var notInManifests = map[string]bool{"AWS_ACCOUNT_ID": true, "KEDA_OPERATOR_ROLE_ARN": true, "EKS_OIDC_PROVIDER": true, "EKS_CLUSTER_NAME": true}

// everywhere are parameters that reach every object (the namespace) or every
// container (the image registry and tag); the test checks them on each.
var everywhere = map[string]bool{"NAMESPACE": true, "ECR_REGISTRY": true, "IMAGE_TAG": true}

// copyDeployTree copies deploy/ to a temporary directory and returns its root.
func copyDeployTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(svctest.RepoRoot(t), "deploy")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, "deploy", rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestEveryParameterReachesEveryFieldAndNoDefaultIsLeft(t *testing.T) {
	root := svctest.RepoRoot(t)
	keys, defaults := readParams(t, filepath.Join(root, paramsFile))
	for _, k := range keys {
		if _, ok := changed[k]; !ok {
			t.Fatalf("params.env has %s, which this test does not change", k)
		}
		if reach[k] == nil && !notInManifests[k] && !everywhere[k] {
			t.Errorf("params.env has %s, but no field is expected to receive it", k)
		}
	}
	tmp := copyDeployTree(t)
	var buf strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&buf, "%s=%s\n", k, changed[k])
	}
	if err := os.WriteFile(filepath.Join(tmp, paramsFile), []byte(buf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, overlay := range manifests.Overlays {
		t.Run(overlay, func(t *testing.T) {
			objs := renderOverlay(t, tmp, overlay)
			for k, perOverlay := range reach {
				for _, spec := range perOverlay[overlay] {
					id, path, _ := strings.Cut(spec, " ")
					got, err := lookup(objs, id, path)
					if err != nil {
						t.Errorf("%s: %v", k, err)
					} else if !strings.Contains(got, changed[k]) {
						t.Errorf("%s: %s %s = %q, want it to carry %q", k, id, path, got, changed[k])
					}
				}
			}
			for _, p := range podTemplates(t, objs) {
				for _, c := range allContainers(p.spec) {
					if !strings.HasPrefix(c.Image, changed["ECR_REGISTRY"]+"/keda-samples/") || !strings.HasSuffix(c.Image, ":"+changed["IMAGE_TAG"]) {
						t.Errorf("%s container %s: image %q does not carry ECR_REGISTRY and IMAGE_TAG", p.owner, c.Name, c.Image)
					}
				}
			}
			for _, o := range objs {
				if o.Kind != "Namespace" && o.Namespace != changed["NAMESPACE"] {
					t.Errorf("%s in namespace %q, want %q", o, o.Namespace, changed["NAMESPACE"])
				}
				if o.Kind == "Namespace" && o.Name != changed["NAMESPACE"] {
					t.Errorf("Namespace %q, want %q", o.Name, changed["NAMESPACE"])
				}
				if o.Kind == "ConfigMap" && o.Name == "params" {
					t.Error("the params ConfigMap reached the output")
				}
				walkStrings(o.Map, func(s string) {
					for _, k := range keys {
						d := defaults[k]
						// The namespace is checked above, field by field: its default,
						// "keda-samples", is also the part-of label and the ECR
						// repository prefix.
						if k != "NAMESPACE" && strings.Contains(s, d) {
							t.Errorf("%s still carries the default %s (%q) in %q", o, k, d, s)
						}
					}
				})
			}
		})
	}
}

// lookup resolves "Kind/name" and a kustomize-style field path
// (a.b.[key=value].c, with \. for a literal dot) in objs.
func lookup(objs []manifests.Object, id, path string) (string, error) {
	kind, name, _ := strings.Cut(id, "/")
	for _, o := range objs {
		if o.Kind != kind || o.Name != name {
			continue
		}
		var cur any = o.Map
		for _, seg := range splitPath(path) {
			if m := listSelector.FindStringSubmatch(seg); m != nil {
				list, _ := cur.([]any)
				var found any
				for _, e := range list {
					if em, ok := e.(map[string]any); ok && fmt.Sprint(em[m[1]]) == m[2] {
						found = e
					}
				}
				cur = found
			} else {
				mp, _ := cur.(map[string]any)
				cur = mp[seg]
			}
			if cur == nil {
				return "", fmt.Errorf("%s: no %s (stopped at %q)", id, path, seg)
			}
		}
		return fmt.Sprint(cur), nil
	}
	return "", fmt.Errorf("no %s rendered", id)
}

var listSelector = regexp.MustCompile(`^\[([^=]+)=(.*)\]$`)

func splitPath(p string) []string {
	p = strings.ReplaceAll(p, `\.`, "\x00")
	var segs []string
	for _, s := range strings.Split(p, ".") {
		segs = append(segs, strings.ReplaceAll(s, "\x00", "."))
	}
	return segs
}

func walkStrings(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case map[string]any:
		for k, e := range x {
			fn(k)
			walkStrings(e, fn)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	}
}

// TestNoPlaceholdersOutsideTheParameterFile: no <MY_...>-style value for a
// user to find and edit anywhere in deploy/ (the parameter file is the one
// place).
func TestNoPlaceholdersOutsideTheParameterFile(t *testing.T) {
	placeholder := regexp.MustCompile(`<[A-Z][A-Z0-9_]*>|<MY_|REPLACE_ME|CHANGEME`)
	err := filepath.WalkDir(filepath.Join(svctest.RepoRoot(t), "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if loc := placeholder.FindIndex(b); loc != nil {
			t.Errorf("%s: placeholder %q", path, b[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
