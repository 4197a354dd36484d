// Package iamgen renders the IAM documents of deploy/iam with the values of
// the parameter file: one permission policy per principal (the templates in
// deploy/iam/policies, ${NAME} filled from params.env), an IRSA trust policy
// per role (built here: the cluster's OIDC provider, one subject per
// ServiceAccount that assumes the role) and the EKS Pod Identity trust policy.
// `make iam` writes them to bin/iam; tools/kedasim/deploytests check them.
package iamgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Role is one IAM role the samples need.
type Role struct {
	Name            string   // file prefix in bin/iam
	ARNParam        string   // the params.env key holding its ARN
	ServiceAccounts []string // namespace:name that assume it through IRSA
}

// Roles: every principal and who assumes it, one role per ServiceAccount
// (EKS Pod Identity allows one association per ServiceAccount). In the
// sidecar overlay webapi's pods run as otel-collector: the collector in the
// pod is what calls AWS there, and webapi's container is skipped
// (components/collector-sidecar).
var Roles = []Role{
	{"keda-operator", "KEDA_OPERATOR_ROLE_ARN", []string{"keda:keda-operator"}},
	{"collector", "COLLECTOR_ROLE_ARN", []string{"${NAMESPACE}:otel-collector"}},
	{"webapi", "WEBAPI_ROLE_ARN", []string{"${NAMESPACE}:webapi"}},
	{"sqsworker", "SQSWORKER_ROLE_ARN", []string{"${NAMESPACE}:sqsworker"}},
	{"videoencoder", "VIDEOENCODER_ROLE_ARN", []string{"${NAMESPACE}:videoencoder"}},
	{"producer", "PRODUCER_ROLE_ARN", []string{"${NAMESPACE}:producer"}},
}

// ReadParams reads a params.env: KEY=value lines, # comments. It adds the
// values derived from others: the queue names from the queue URLs
// (SQS_WORKER_QUEUE_NAME, VIDEO_QUEUE_NAME), each role's name and path from
// its ARN (<X>_ROLE_NAME, <X>_ROLE_PATH for <X>_ROLE_ARN), and the ARN
// partition from the region (AWS_PARTITION: aws, aws-cn, aws-us-gov).
func ReadParams(file string) (map[string]string, []string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	vals := map[string]string{}
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || v == "" || strings.ContainsAny(v, " \t\"'") {
			return nil, nil, fmt.Errorf("%s:%d: %q is not KEY=value (no quotes, no spaces)", file, n, line)
		}
		keys = append(keys, k)
		vals[k] = v
	}
	for _, q := range []string{"SQS_WORKER_QUEUE", "VIDEO_QUEUE"} {
		if u, ok := vals[q+"_URL"]; ok {
			vals[q+"_NAME"] = path.Base(u)
		}
	}
	for _, k := range keys {
		if role, ok := strings.CutSuffix(k, "_ROLE_ARN"); ok {
			p, name, err := RolePathName(vals[k])
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", file, k, err)
			}
			vals[role+"_ROLE_NAME"], vals[role+"_ROLE_PATH"] = name, p
		}
	}
	if r, ok := vals["AWS_REGION"]; ok {
		vals["AWS_PARTITION"] = Partition(r)
	}
	return vals, keys, sc.Err()
}

// Partition is the ARN partition of a region.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// RolePathName splits a role ARN (arn:<partition>:iam::<account>:role/<path/>name)
// into its path ("/" when it has none, else "/a/b/") and its name: what
// aws iam create-role takes as --path and --role-name.
func RolePathName(arn string) (rolePath, name string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return "", "", fmt.Errorf("%q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", arn)
	}
	rest := strings.TrimPrefix(parts[5], "role")
	i := strings.LastIndex(rest, "/")
	return rest[:i+1], rest[i+1:], nil
}

// Expand fills ${NAME} from params; an unknown name is an error, never "".
func Expand(tmpl string, params map[string]string) (string, error) {
	var missing []string
	out := os.Expand(tmpl, func(k string) string {
		v, ok := params[k]
		if !ok {
			missing = append(missing, k)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no parameter %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// Render returns every document by file name.
func Render(iamDir string, params map[string]string) (map[string][]byte, error) {
	docs := map[string][]byte{}
	for _, r := range Roles {
		tmpl, err := os.ReadFile(filepath.Join(iamDir, "policies", r.Name+".json"))
		if err != nil {
			return nil, err
		}
		policy, err := Expand(string(tmpl), params)
		if err != nil {
			return nil, fmt.Errorf("%s policy: %w", r.Name, err)
		}
		docs[r.Name+"-policy.json"] = []byte(policy)
		trust, err := irsaTrust(r, params)
		if err != nil {
			return nil, fmt.Errorf("%s trust: %w", r.Name, err)
		}
		docs[r.Name+"-trust-irsa.json"] = trust
	}
	pi, err := os.ReadFile(filepath.Join(iamDir, "trust-pod-identity.json"))
	if err != nil {
		return nil, err
	}
	docs["trust-pod-identity.json"] = pi
	return docs, nil
}

// RolesTable is one line per role, "<role> <path> <name>" (path "/" when
// the ARN has none): what the IRSA loop in deploy/README.md passes to
// aws iam create-role --path --role-name. make iam writes it to
// bin/iam/roles.txt.
func RolesTable(params map[string]string) (string, error) {
	var b strings.Builder
	for _, r := range Roles {
		p, name, err := RolePathName(params[r.ARNParam])
		if err != nil {
			return "", fmt.Errorf("%s: %w", r.ARNParam, err)
		}
		fmt.Fprintf(&b, "%s %s %s\n", r.Name, p, name)
	}
	return b.String(), nil
}

// irsaTrust lets the role be assumed with the web identity tokens of its
// ServiceAccounts, and nothing else.
func irsaTrust(r Role, params map[string]string) ([]byte, error) {
	provider, err := Expand("arn:${AWS_PARTITION}:iam::${AWS_ACCOUNT_ID}:oidc-provider/${EKS_OIDC_PROVIDER}", params)
	if err != nil {
		return nil, err
	}
	issuer := params["EKS_OIDC_PROVIDER"]
	var subjects []string
	for _, sa := range r.ServiceAccounts {
		s, err := Expand(sa, params)
		if err != nil {
			return nil, err
		}
		subjects = append(subjects, "system:serviceaccount:"+s)
	}
	sort.Strings(subjects)
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":       "IrsaServiceAccounts",
			"Effect":    "Allow",
			"Principal": map[string]any{"Federated": provider},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": map[string]any{"StringEquals": map[string]any{
				issuer + ":aud": "sts.amazonaws.com",
				issuer + ":sub": subjects,
			}},
		}},
	}
	return json.MarshalIndent(doc, "", "  ")
}
