package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/yaml"

	"github.com/keda-eks-samples/workloads/test/deploy/internal/kedaview"
)

// overlays are the six variants users deploy (deploy/kustomize/overlays).
var overlays = kedaview.Names

// object is one rendered Kubernetes object.
type object = kedaview.Object

// repoRoot is the repository's top directory (this module is test/deploy).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "kustomize")); err != nil {
		t.Fatalf("not the repository root: %v", err)
	}
	return root
}

// render builds a kustomization directory as `kustomize build` does
// (kedaview.Render).
func render(t testing.TB, dir string) []object {
	t.Helper()
	objs, err := kedaview.Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// objectsOf is every object of a kustomize build.
func objectsOf(t testing.TB, m resmap.ResMap) []object {
	t.Helper()
	objs, err := kedaview.Objects(m)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// renderOverlay renders deploy/kustomize/overlays/<name> under root.
func renderOverlay(t testing.TB, root, name string) []object {
	t.Helper()
	return render(t, filepath.Join(root, "deploy", "kustomize", "overlays", name))
}

// eachOverlay renders every overlay once per test binary and hands each to fn
// in a subtest.
func eachOverlay(t *testing.T, fn func(t *testing.T, overlay string, objs []object)) {
	t.Helper()
	root := repoRoot(t)
	for _, name := range overlays {
		t.Run(name, func(t *testing.T) { fn(t, name, renderOverlay(t, root, name)) })
	}
}

func TestOverlayListIsTheDirectoryListing(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(repoRoot(t), "deploy", "kustomize", "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.IsDir() {
			got = append(got, e.Name())
		}
	}
	want := append([]string(nil), overlays...)
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
	eachOverlay(t, func(t *testing.T, overlay string, objs []object) {
		dir := filepath.Join(repoRoot(t), "deploy", "kustomize", "overlays", overlay)
		var stderr bytes.Buffer
		cmd := exec.Command(kubectl, "kustomize", dir)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
		}
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
	})
}
