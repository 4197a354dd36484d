// Package iamdoc renders the IAM documents of deploy/iam with the values of
// the parameter file: one permission policy per principal (the templates in
// deploy/iam/policies, ${NAME} filled from params.env), an IRSA trust policy
// per role (built here: the cluster's OIDC provider, one subject per
// ServiceAccount that assumes the role) and the EKS Pod Identity trust policy.
// `make iam` writes them to bin/iam; test/deploy checks them.
package iamdoc

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

// Roles: every principal and who assumes it. The collector's role is also
// webapi's ServiceAccount's in the sidecar overlay (the collector runs in the
// webapi pod there).
var Roles = []Role{
	{"keda-operator", "KEDA_OPERATOR_ROLE_ARN", []string{"keda:keda-operator"}},
	{"collector", "COLLECTOR_ROLE_ARN", []string{"${NAMESPACE}:otel-collector", "${NAMESPACE}:webapi"}},
	{"webapi", "WEBAPI_ROLE_ARN", []string{"${NAMESPACE}:webapi"}},
	{"sqsworker", "SQSWORKER_ROLE_ARN", []string{"${NAMESPACE}:sqsworker"}},
	{"videoencoder", "VIDEOENCODER_ROLE_ARN", []string{"${NAMESPACE}:videoencoder"}},
	{"producer", "PRODUCER_ROLE_ARN", []string{"${NAMESPACE}:producer"}},
}

// ReadParams reads a params.env: KEY=value lines, # comments. It adds the
// names derived from the queue URLs (SQS_WORKER_QUEUE_NAME, VIDEO_QUEUE_NAME),
// which ARNs need.
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
	return vals, keys, sc.Err()
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

// irsaTrust lets the role be assumed with the web identity tokens of its
// ServiceAccounts, and nothing else.
func irsaTrust(r Role, params map[string]string) ([]byte, error) {
	provider, err := Expand("arn:aws:iam::${AWS_ACCOUNT_ID}:oidc-provider/${EKS_OIDC_PROVIDER}", params)
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
