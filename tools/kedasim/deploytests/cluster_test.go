package deploytests

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/iamgen"
	"github.com/keda-eks-samples/workloads/tools/kedasim/internal/awscheck"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

var eksctlSchema = sync.OnceValues(awscheck.LoadEksctlSchema)

// renderClusterConfig is make cluster-config's output for a params.env.
func renderClusterConfig(t *testing.T, root, paramsPath string) []byte {
	t.Helper()
	params, _, err := iamgen.ReadParams(paramsPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := iamgen.ClusterConfig(filepath.Join(root, "deploy", "eksctl", "cluster.yaml"), filepath.Join(root, "deploy", "iam"), params)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestClusterConfigMatchesEksctlSchema: the ClusterConfig make
// cluster-config writes, from the shipped params.env and from one with
// every value changed, passes eksctl's schema and has what the overlays
// need: Kubernetes >= 1.29, node groups for both image architectures, the
// Pod Identity agent, the VPC CNI with network policy enforcement, and one
// Pod Identity association for every ServiceAccount that calls AWS, KEDA's
// operator included, each with its deploy/iam policy.
func TestClusterConfigMatchesEksctlSchema(t *testing.T) {
	root := svctest.RepoRoot(t)
	s, err := eksctlSchema()
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := readParams(t, filepath.Join(root, paramsFile))
	var buf strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&buf, "%s=%s\n", k, changed[k])
	}
	changedFile := filepath.Join(t.TempDir(), "params.env")
	if err := os.WriteFile(changedFile, []byte(buf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, pf := range map[string]string{"shipped": filepath.Join(root, paramsFile), "changed": changedFile} {
		t.Run(name, func(t *testing.T) {
			rendered := renderClusterConfig(t, root, pf)
			if err := s.Check(rendered); err != nil {
				t.Fatalf("eksctl schema: %v", err)
			}
			params, _, _ := iamgen.ReadParams(pf)
			var cfg struct {
				Metadata struct{ Name, Region, Version string }
				Addons   []struct {
					Name                string
					ConfigurationValues string `json:"configurationValues"`
				}
				ManagedNodeGroups []struct {
					Name         string
					InstanceType string `json:"instanceType"`
				} `json:"managedNodeGroups"`
				IAM struct {
					PodIdentityAssociations []struct {
						Namespace          string         `json:"namespace"`
						ServiceAccountName string         `json:"serviceAccountName"`
						RoleName           string         `json:"roleName"`
						PermissionPolicy   map[string]any `json:"permissionPolicy"`
					} `json:"podIdentityAssociations"`
				}
			}
			if err := yaml.Unmarshal(rendered, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Metadata.Name != params["EKS_CLUSTER_NAME"] || cfg.Metadata.Region != params["AWS_REGION"] {
				t.Errorf("cluster %s in %s, want params.env's %s in %s", cfg.Metadata.Name, cfg.Metadata.Region, params["EKS_CLUSTER_NAME"], params["AWS_REGION"])
			}
			if minor, err := strconv.Atoi(strings.TrimPrefix(cfg.Metadata.Version, "1.")); err != nil || minor < 29 {
				t.Errorf("Kubernetes %q: the sidecar overlay's native sidecar needs >= 1.29", cfg.Metadata.Version)
			}
			arches := map[string]bool{}
			graviton := regexp.MustCompile(`^[a-z]+[0-9]+g[a-z]*\.`)
			for _, ng := range cfg.ManagedNodeGroups {
				arches[map[bool]string{true: "arm64", false: "amd64"}[graviton.MatchString(ng.InstanceType)]] = true
			}
			if !arches["amd64"] || !arches["arm64"] {
				t.Errorf("node groups %+v: want one of each image architecture", cfg.ManagedNodeGroups)
			}
			addons := map[string]string{}
			for _, a := range cfg.Addons {
				addons[a.Name] = a.ConfigurationValues
			}
			if _, ok := addons["eks-pod-identity-agent"]; !ok {
				t.Error("no eks-pod-identity-agent add-on: the associations would hand out nothing")
			}
			var cni map[string]any
			if err := json.Unmarshal([]byte(addons["vpc-cni"]), &cni); err != nil || cni["enableNetworkPolicy"] != "true" {
				t.Errorf("vpc-cni configurationValues %q: network policy not enabled (components/network-policies would do nothing)", addons["vpc-cni"])
			}
			docs, err := iamgen.Render(filepath.Join(root, "deploy", "iam"), params)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, a := range cfg.IAM.PodIdentityAssociations {
				sa := a.Namespace + ":" + a.ServiceAccountName
				got[sa] = true
				var role iamgen.Role
				for _, r := range iamgen.Roles {
					for _, s := range r.ServiceAccounts {
						if e, _ := iamgen.Expand(s, params); e == sa {
							role = r
						}
					}
				}
				var want map[string]any
				if err := json.Unmarshal(docs[role.Name+"-policy.json"], &want); err != nil {
					t.Fatalf("%s: %v", sa, err)
				}
				a1, _ := json.Marshal(a.PermissionPolicy)
				a2, _ := json.Marshal(want)
				if string(a1) != string(a2) {
					t.Errorf("%s: permission policy\n%s\nwant deploy/iam/policies/%s.json\n%s", sa, a1, role.Name, a2)
				}
				if !strings.HasSuffix(params[role.ARNParam], ":role/"+a.RoleName) {
					t.Errorf("%s: roleName %s is not the role of %s (%s)", sa, a.RoleName, role.ARNParam, params[role.ARNParam])
				}
			}
			for _, sa := range awsServiceAccounts(t, root, pf) {
				if !got[sa] {
					t.Errorf("ServiceAccount %s calls AWS but has no Pod Identity association", sa)
				}
			}
		})
	}
}

// awsServiceAccounts is namespace:name of every ServiceAccount that some
// overlay gives an AWS role (the IRSA annotation), plus KEDA's operator.
func awsServiceAccounts(t *testing.T, root, paramsPath string) []string {
	t.Helper()
	params, _, _ := iamgen.ReadParams(paramsPath)
	set := map[string]bool{"keda:keda-operator": true}
	for _, o := range manifests.Overlays {
		for _, obj := range renderOverlay(t, root, o) {
			md, _ := obj.Map["metadata"].(map[string]any)
			ann, _ := md["annotations"].(map[string]any)
			if obj.Kind == "ServiceAccount" && ann["eks.amazonaws.com/role-arn"] != nil {
				set[params["NAMESPACE"]+":"+obj.Name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// TestClusterConfigHoldsNoPolicyOfItsOwn: the template names no permission
// (deploy/iam is the one source), and the generator refuses one that does,
// an association no role in deploy/iam is assumed by, a misspelt key (the
// schema), and a role ARN with a path (eksctl cannot create one).
func TestClusterConfigHoldsNoPolicyOfItsOwn(t *testing.T) {
	root := svctest.RepoRoot(t)
	tmplFile := filepath.Join(root, "deploy", "eksctl", "cluster.yaml")
	src, err := os.ReadFile(tmplFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, forbidden := range []string{"permissionPolicy:", "Statement", "Action"} {
		if strings.Contains(string(src), forbidden) {
			t.Errorf("deploy/eksctl/cluster.yaml holds %q: the policies are deploy/iam's", forbidden)
		}
	}
	params, _, err := iamgen.ReadParams(filepath.Join(root, paramsFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := eksctlSchema()
	if err != nil {
		t.Fatal(err)
	}
	try := func(edit func(string) string, p map[string]string) error {
		f := filepath.Join(t.TempDir(), "cluster.yaml")
		if err := os.WriteFile(f, []byte(edit(string(src))), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := iamgen.ClusterConfig(f, filepath.Join(root, "deploy", "iam"), p)
		if err != nil {
			return err
		}
		return s.Check(cfg)
	}
	same := func(s string) string { return s }
	if err := try(same, params); err != nil {
		t.Fatalf("the shipped template: %v", err)
	}
	pathParams := maps.Clone(params)
	pathParams["SQSWORKER_ROLE_ARN"] = "arn:aws:iam::111122223333:role/team-a/keda-samples-sqsworker"
	pathParams["SQSWORKER_ROLE_PATH"], pathParams["SQSWORKER_ROLE_NAME"], _ = iamgen.RolePathName(pathParams["SQSWORKER_ROLE_ARN"])
	for _, c := range []struct {
		name   string
		edit   func(string) string
		params map[string]string
		want   string
	}{
		{"misspelt add-on key", func(s string) string {
			return strings.Replace(s, "useDefaultPodIdentityAssociations: true", "useDefaultPodIdentityAssociation: true", 1)
		}, params, "useDefaultPodIdentityAssociation"},
		{"misspelt node group key", func(s string) string {
			return strings.Replace(s, "instanceType: m7g.large", "instancetype: m7g.large", 1)
		}, params, "instancetype"},
		{"a policy of its own", func(s string) string {
			return strings.Replace(s, `roleName: "${PRODUCER_ROLE_NAME}"}`, `roleName: "${PRODUCER_ROLE_NAME}", permissionPolicy: {Version: "2012-10-17"}}`, 1)
		}, params, "permissionPolicy of its own"},
		{"a ServiceAccount without a role", func(s string) string {
			return strings.Replace(s, "serviceAccountName: producer", "serviceAccountName: resultanalyzer", 1)
		}, params, "no role"},
		{"a role path", same, pathParams, "path /team-a/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := try(c.edit, c.params); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %q", err, c.want)
			}
		})
	}
}

// TestIAMFollowsThePartitionAndKeepsRolePaths: in the China and GovCloud
// regions every ARN is in that partition (arn:aws-cn:, arn:aws-us-gov:),
// and a role ARN's path reaches the role table make iam writes for
// aws iam create-role.
func TestIAMFollowsThePartitionAndKeepsRolePaths(t *testing.T) {
	root := svctest.RepoRoot(t)
	for region, partition := range map[string]string{"us-east-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov"} {
		params, _, err := iamgen.ReadParams(filepath.Join(root, paramsFile))
		if err != nil {
			t.Fatal(err)
		}
		params["AWS_REGION"] = region
		params["AWS_PARTITION"] = iamgen.Partition(region)
		docs, err := iamgen.Render(filepath.Join(root, "deploy", "iam"), params)
		if err != nil {
			t.Fatal(err)
		}
		for name, doc := range docs {
			for _, arn := range regexp.MustCompile(`"arn:[^:"]*:`).FindAllString(string(doc), -1) {
				if arn != `"arn:`+partition+`:` {
					t.Errorf("%s in %s: %s, want partition %s", name, region, arn, partition)
				}
			}
		}
	}
	params, _, err := iamgen.ReadParams(filepath.Join(root, paramsFile))
	if err != nil {
		t.Fatal(err)
	}
	params["PRODUCER_ROLE_ARN"] = "arn:aws:iam::111122223333:role/team-a/samples/lab-producer"
	table, err := iamgen.RolesTable(params)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, "\nproducer /team-a/samples/ lab-producer\n") && !strings.HasSuffix(table, "producer /team-a/samples/ lab-producer\n") {
		t.Errorf("role table does not keep the path:\n%s", table)
	}
	if _, _, err := iamgen.RolePathName("arn:aws:iam::111122223333:user/x"); err == nil {
		t.Error("a user ARN was taken for a role's")
	}
}
