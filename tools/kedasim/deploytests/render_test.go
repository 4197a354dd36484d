package deploytests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/yaml"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

// render builds a kustomization directory as `kustomize build` does
// (manifests.Render).
func render(t testing.TB, dir string) []manifests.Object {
	t.Helper()
	objs, err := manifests.Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// objectsOf is every object of a kustomize build.
func objectsOf(t testing.TB, m resmap.ResMap) []manifests.Object {
	t.Helper()
	objs, err := manifests.Objects(m)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// renderOverlay renders deploy/kustomize/overlays/<name> under root
// (manifests.RenderOverlay).
func renderOverlay(t testing.TB, root, name string) []manifests.Object {
	t.Helper()
	objs, err := manifests.RenderOverlay(root, name)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// eachOverlay renders every overlay once per test binary and hands each to fn
// in a subtest.
func eachOverlay(t *testing.T, fn func(t *testing.T, overlay string, objs []manifests.Object)) {
	t.Helper()
	root := svctest.RepoRoot(t)
	for _, name := range manifests.Overlays {
		t.Run(name, func(t *testing.T) { fn(t, name, renderOverlay(t, root, name)) })
	}
}

// combinations are the optional components every overlay is also checked
// with, alone and together, each listed before components/common as
// deploy/README.md says to add them (microservices-demo's way of testing
// its component combinations).
var combinations = [][]string{nil, {"pod-identity"}, {"network-policies"}, {"pod-identity", "network-policies"}}

// variantName is "gateway" or "gateway+pod-identity+network-policies".
func variantName(overlay string, components []string) string {
	return strings.Join(append([]string{overlay}, components...), "+")
}

var (
	variantsMu sync.Mutex
	variants   = map[string][]manifests.Object{}
)

// renderVariant renders an overlay with extra components inserted before
// components/common in its kustomization (in a copy of deploy/), once per
// test binary.
func renderVariant(t *testing.T, overlay string, components []string) []manifests.Object {
	t.Helper()
	if len(components) == 0 {
		return renderOverlay(t, svctest.RepoRoot(t), overlay)
	}
	name := variantName(overlay, components)
	variantsMu.Lock()
	defer variantsMu.Unlock()
	if objs, ok := variants[name]; ok {
		return objs
	}
	tmp := copyDeployTree(t)
	file := filepath.Join(tmp, "deploy", "kustomize", "overlays", overlay, "kustomization.yaml")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const common = "- ../../components/common\n"
	if !bytes.Contains(b, []byte(common)) {
		t.Fatalf("%s lists no %s", file, strings.TrimSpace(common))
	}
	var extra strings.Builder
	for _, c := range components {
		extra.WriteString("- ../../components/" + c + "\n")
	}
	b = bytes.Replace(b, []byte(common), []byte(extra.String()+common), 1)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	objs := renderOverlay(t, tmp, overlay)
	variants[name] = objs
	return objs
}

// eachVariant hands every overlay, alone and with each combination of the
// optional components, to fn in a subtest.
func eachVariant(t *testing.T, fn func(t *testing.T, overlay string, objs []manifests.Object)) {
	t.Helper()
	for _, name := range manifests.Overlays {
		for _, comps := range combinations {
			t.Run(variantName(name, comps), func(t *testing.T) { fn(t, name, renderVariant(t, name, comps)) })
		}
	}
}

func TestOverlayListIsTheDirectoryListing(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(svctest.RepoRoot(t), "deploy", "kustomize", "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.IsDir() {
			got = append(got, e.Name())
		}
	}
	want := append([]string(nil), manifests.Overlays...)
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("overlays on disk %v, tested %v", got, want)
	}
}

// TestOverlaysRenderLikeKubectl: what users run (`kubectl kustomize`, or
// `kustomize build`) gives the same objects as the pinned kustomize API the
// other tests use.
func TestOverlaysRenderLikeKubectl(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH; the kustomize API render is still checked by every other test")
	}
	eachOverlay(t, func(t *testing.T, overlay string, objs []manifests.Object) {
		dir := filepath.Join(svctest.RepoRoot(t), "deploy", "kustomize", "overlays", overlay)
		var stderr bytes.Buffer
		cmd := exec.Command(kubectl, "kustomize", dir)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
		}
		sameAsKubectl(t, out, objs)
	})
}

// sameAsKubectl: the objects kubectl kustomize printed (out) are the kustomize
// API's objs, compared by identity (kubectl orders them for apply).
func sameAsKubectl(t *testing.T, out []byte, objs []manifests.Object) {
	t.Helper()
	var fromKubectl []map[string]any
	for _, doc := range strings.Split(string(out), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		fromKubectl = append(fromKubectl, m)
	}
	if len(fromKubectl) != len(objs) {
		t.Fatalf("kubectl rendered %d objects, the kustomize API %d", len(fromKubectl), len(objs))
	}
	// kubectl orders objects for apply (Namespace first); compare by identity.
	byID := map[string]map[string]any{}
	for _, m := range fromKubectl {
		md, _ := m["metadata"].(map[string]any)
		ns, _ := md["namespace"].(string)
		byID[fmt.Sprint(m["kind"], "/", ns, "/", md["name"])] = m
	}
	for _, o := range objs {
		k := byID[fmt.Sprint(o.Kind, "/", o.Namespace, "/", o.Name)]
		if !reflect.DeepEqual(o.Map, k) {
			a, _ := yaml.Marshal(o.Map)
			b, _ := yaml.Marshal(k)
			t.Errorf("%s differs:\nkustomize API:\n%s\nkubectl:\n%s", o, a, b)
		}
	}
}

// TestRenderWithComponentsIsTheCheckedVariant: make render (and so make
// deploy) with COMPONENTS gives, through kubectl, the objects of the
// variant every check here runs on.
func TestRenderWithComponentsIsTheCheckedVariant(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not on PATH")
	}
	root := svctest.RepoRoot(t)
	bin := t.TempDir()
	for _, name := range manifests.Overlays {
		for _, comps := range combinations[1:] {
			t.Run(variantName(name, comps), func(t *testing.T) {
				cmd := exec.Command("make", "-s", "--no-print-directory", "render", "OVERLAY="+name, "COMPONENTS="+strings.Join(comps, " "), "BIN="+bin)
				cmd.Dir = root
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("make render: %v\n%s", err, stderr.String())
				}
				sameAsKubectl(t, out, renderVariant(t, name, comps))
			})
		}
	}
}
