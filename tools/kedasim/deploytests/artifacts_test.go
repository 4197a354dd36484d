package deploytests

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/iamgen"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/zclconf/go-cty/cty"
	corev1 "k8s.io/api/core/v1"
)

// images are the six images the overlays deploy and the bake file builds.
var images = []string{"webapi", "sqsworker", "videoencoder", "resultanalyzer", "producer", "otel-collector"}

func TestEveryImageIsTheParameterisedECRReference(t *testing.T) {
	_, params := readParams(t, filepath.Join(svctest.RepoRoot(t), paramsFile))
	ref := regexp.MustCompile(`^` + regexp.QuoteMeta(params["ECR_REGISTRY"]) + `/keda-samples/([a-z-]+):` + regexp.QuoteMeta(params["IMAGE_TAG"]) + `$`)
	eachVariant(t, func(t *testing.T, _ string, objs []manifests.Object) {
		for _, p := range podTemplates(t, objs) {
			for _, c := range allContainers(p.spec) {
				m := ref.FindStringSubmatch(c.Image)
				if m == nil || !slices.Contains(images, m[1]) {
					t.Errorf("%s container %s: image %q is not %s/keda-samples/<image>:%s", p.owner, c.Name, c.Image, params["ECR_REGISTRY"], params["IMAGE_TAG"])
				}
			}
		}
	})
}

// TestCollectorConfigMapsAreTheRepoFiles: what the collector runs in the
// cluster is byte for byte what tools/collector's tests validate and run.
func TestCollectorConfigMapsAreTheRepoFiles(t *testing.T) {
	root := svctest.RepoRoot(t)
	shipped, err := filepath.Glob(filepath.Join(root, "deploy", "collector", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	eachOverlay(t, func(t *testing.T, _ string, objs []manifests.Object) {
		for _, o := range objs {
			if o.Kind != "ConfigMap" || !strings.HasPrefix(o.Name, "otel-collector-config") {
				continue
			}
			v, err := manifests.DecodeStrict(o)
			if err != nil {
				t.Fatal(err)
			}
			cm := v.(*corev1.ConfigMap)
			if len(cm.Data) == 0 {
				t.Errorf("%s is empty", o)
			}
			for key, data := range cm.Data {
				want, err := os.ReadFile(filepath.Join(root, "deploy", "collector", key))
				if err != nil {
					t.Fatalf("%s key %s: %v", o, key, err)
				}
				if !bytes.Equal([]byte(data), want) {
					t.Errorf("%s key %s differs from deploy/collector/%s", o, key, key)
				}
				n++
			}
			for _, f := range shipped {
				if name := filepath.Base(f); name != "kustomization.yaml" && cm.Data[name] == "" {
					t.Errorf("%s does not ship deploy/collector/%s", o, name)
				}
			}
		}
	})
	if n == 0 {
		t.Fatal("no overlay renders the collector's ConfigMap")
	}
}

// TestIAMDocuments: every document parses, allows no "*" action, names its
// resources (the two CloudWatch actions that support no resource-level
// permission are the only "*", and PutMetricData is held to one namespace),
// and carries the parameter file's values.
func TestIAMDocuments(t *testing.T) {
	root := svctest.RepoRoot(t)
	params, _, err := iamgen.ReadParams(filepath.Join(root, paramsFile))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := iamgen.Render(filepath.Join(root, "deploy", "iam"), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2*len(iamgen.Roles)+1 {
		t.Errorf("%d documents, want a policy and an IRSA trust per role plus the Pod Identity trust", len(docs))
	}
	noResourceLevel := map[string]bool{"cloudwatch:GetMetricData": true, "cloudwatch:PutMetricData": true}
	type statement struct {
		Sid       string
		Effect    string
		Action    any
		Resource  any
		Principal any
		Condition map[string]map[string]any
	}
	names := make([]string, 0, len(docs))
	for n := range docs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		var doc struct {
			Version   string
			Statement []statement
		}
		dec := json.NewDecoder(bytes.NewReader(docs[name]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
			t.Errorf("%s: version %q, %d statements", name, doc.Version, len(doc.Statement))
		}
		for _, s := range doc.Statement {
			actions := strs(s.Action)
			if s.Effect != "Allow" || len(actions) == 0 {
				t.Errorf("%s %s: effect %s, actions %v", name, s.Sid, s.Effect, actions)
			}
			for _, a := range actions {
				if strings.Contains(a, "*") {
					t.Errorf("%s %s: wildcard action %q", name, s.Sid, a)
				}
			}
			if s.Principal != nil {
				continue // a trust policy
			}
			for _, r := range strs(s.Resource) {
				if r == "*" {
					for _, a := range actions {
						if !noResourceLevel[a] {
							t.Errorf("%s %s: %s on every resource", name, s.Sid, a)
						}
					}
					if slices.Contains(actions, "cloudwatch:PutMetricData") && s.Condition["StringEquals"]["cloudwatch:namespace"] != params["CLOUDWATCH_NAMESPACE"] {
						t.Errorf("%s %s: PutMetricData not held to namespace %s", name, s.Sid, params["CLOUDWATCH_NAMESPACE"])
					}
					continue
				}
				if !strings.HasPrefix(r, "arn:"+params["AWS_PARTITION"]+":") || !strings.Contains(r, ":"+params["AWS_ACCOUNT_ID"]+":") || !strings.Contains(r, ":"+params["AWS_REGION"]+":") {
					t.Errorf("%s %s: resource %q is not an ARN in the account and region of params.env", name, s.Sid, r)
				}
			}
		}
	}
	if !strings.Contains(string(docs["sqsworker-trust-irsa.json"]), "system:serviceaccount:"+params["NAMESPACE"]+":sqsworker") {
		t.Errorf("sqsworker's trust policy does not name its ServiceAccount:\n%s", docs["sqsworker-trust-irsa.json"])
	}
	if _, err := iamgen.Expand("${NOT_A_PARAM}", params); err == nil {
		t.Error("an unknown ${NAME} in a template expanded to nothing")
	}
}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// buildFlags are the flags of a `go build` command line that matter for
// the binary: -trimpath and the linker flags, with $(VAR) and ${VAR} written
// as VAR so the Makefile's and the Dockerfile's can be compared.
func buildFlags(cmd string) []string {
	cmd = regexp.MustCompile(`\$[({]([A-Z_]+)[)}]`).ReplaceAllString(cmd, "$1")
	cmd = strings.NewReplacer(`"`, " ", `'`, " ", "=", " ").Replace(cmd)
	var flags []string
	for _, f := range strings.Fields(cmd) {
		switch {
		case f == "-trimpath", f == "-s", f == "-w", f == "-X", strings.HasPrefix(f, "VERSION"):
			flags = append(flags, f)
		}
	}
	sort.Strings(flags)
	return flags
}

func TestDockerfile(t *testing.T) {
	root := svctest.RepoRoot(t)
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var froms, users, builds []string
	var buildPlatform, cgoOff, cross bool
	for _, n := range res.AST.Children {
		var args []string
		for a := n.Next; a != nil; a = a.Next {
			args = append(args, a.Value)
		}
		line := strings.Join(args, " ")
		switch strings.ToLower(n.Value) {
		case "from":
			froms = append(froms, args[0])
			if slices.Contains(n.Flags, "--platform=$BUILDPLATFORM") {
				buildPlatform = true
			}
			users = nil // the USER that counts is the final stage's
		case "user":
			users = append(users, line)
		case "env":
			cgoOff = cgoOff || strings.Contains(line, "CGO_ENABLED 0")
		case "run":
			if strings.Contains(line, "go build") {
				builds = append(builds, line)
				cross = strings.Contains(line, "GOOS=${TARGETOS}") && strings.Contains(line, "GOARCH=${TARGETARCH}")
			}
		}
	}
	for _, from := range froms {
		if !regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(from) {
			t.Errorf("FROM %s is not pinned by digest", from)
		}
	}
	if len(froms) != 2 || !strings.Contains(froms[1], "distroless/static") || !strings.Contains(froms[1], ":nonroot@") {
		t.Errorf("stages %v: want a builder and a distroless static nonroot runtime", froms)
	}
	if len(users) != 1 || users[0] != "65532:65532" {
		t.Errorf("final stage USER %v, want 65532:65532 (non-root)", users)
	}
	if !buildPlatform || !cgoOff || !cross {
		t.Errorf("builder on $BUILDPLATFORM %v, CGO off %v, cross-compiles to TARGETOS/TARGETARCH %v", buildPlatform, cgoOff, cross)
	}
	if len(builds) != 1 {
		t.Fatalf("%d go build steps", len(builds))
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^GO_BUILD_FLAGS\s*:?=\s*(.+)$`).FindSubmatch(makefile)
	if m == nil {
		t.Fatal("the Makefile defines no GO_BUILD_FLAGS")
	}
	want, got := buildFlags(string(m[1])), buildFlags(builds[0])
	if !slices.Equal(want, got) || !slices.Contains(got, "-trimpath") || !slices.Contains(got, "VERSION_VAR") {
		t.Errorf("Dockerfile build flags %v, Makefile's %v", got, want)
	}
}

func TestBakeFileBuildsSixImagesForBothPlatforms(t *testing.T) {
	file, diags := hclparse.NewParser().ParseHCLFile(filepath.Join(svctest.RepoRoot(t), "docker-bake.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	body := file.Body.(*hclsyntax.Body)
	targets := map[string]*hclsyntax.Block{}
	var group []string
	eval := func(b *hclsyntax.Block, attr string, vars map[string]cty.Value) cty.Value {
		a := b.Body.Attributes[attr]
		if a == nil {
			return cty.NilVal
		}
		v, diags := a.Expr.Value(&hcl.EvalContext{Variables: vars})
		if diags.HasErrors() {
			t.Fatalf("%s.%s: %v", b.Labels, attr, diags)
		}
		return v
	}
	for _, b := range body.Blocks {
		switch b.Type {
		case "target":
			targets[b.Labels[0]] = b
		case "group":
			if b.Labels[0] == "default" {
				for _, v := range eval(b, "targets", nil).AsValueSlice() {
					group = append(group, v.AsString())
				}
			}
		}
	}
	vars := map[string]cty.Value{"REGISTRY": cty.StringVal("R"), "TAG": cty.StringVal("T"), "VERSION": cty.StringVal("V")}
	// platforms of a target, following inherits.
	var platforms func(b *hclsyntax.Block) []string
	platforms = func(b *hclsyntax.Block) []string {
		if v := eval(b, "platforms", vars); v != cty.NilVal {
			var out []string
			for _, p := range v.AsValueSlice() {
				out = append(out, p.AsString())
			}
			return out
		}
		if v := eval(b, "inherits", vars); v != cty.NilVal {
			for _, parent := range v.AsValueSlice() {
				if p := platforms(targets[parent.AsString()]); p != nil {
					return p
				}
			}
		}
		return nil
	}
	built := map[string][]string{} // image -> platforms
	for label, b := range targets {
		if strings.HasPrefix(label, "_") {
			continue
		}
		names := []string{label}
		var matrixVar string
		if m := eval(b, "matrix", vars); m != cty.NilVal {
			names = nil
			for k, list := range m.AsValueMap() {
				matrixVar = k
				for _, v := range list.AsValueSlice() {
					names = append(names, v.AsString())
				}
			}
		}
		for _, name := range names {
			v := map[string]cty.Value{}
			maps.Copy(v, vars)
			if matrixVar != "" {
				v[matrixVar] = cty.StringVal(name)
			}
			for _, tag := range eval(b, "tags", v).AsValueSlice() {
				want := "R/keda-samples/" + name + ":T"
				if tag.AsString() != want {
					t.Errorf("target %s: tag %s, want %s", name, tag.AsString(), want)
				}
			}
			built[name] = platforms(b)
		}
	}
	for _, img := range images {
		p := built[img]
		sort.Strings(p)
		if !slices.Equal(p, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("image %s: platforms %v, want linux/amd64 and linux/arm64", img, p)
		}
		if !slices.Contains(group, img) {
			t.Errorf("image %s is not in the default group %v", img, group)
		}
	}
	if len(built) != len(images) {
		t.Errorf("bake builds %d images, want %d", len(built), len(images))
	}
}
