package loadgen_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// Must-show 6a: the TypeScript compiler, with @types/k6, rejects the
// mistakes k6 would only find when run (or never). Each case copies
// loadtest/ to a temporary directory, makes one mistake and expects tsc to
// fail naming it; the unmodified copy must pass, so a failure is the
// mistake's.
func TestTypeCheckRejectsMisspeltK6Scripts(t *testing.T) {
	root := svctest.RepoRoot(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: install Node.js 20 to type-check the k6 scripts")
	}
	tsc := filepath.Join(root, "loadtest", "node_modules", "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		t.Fatalf("%v: run make test-k6 (npm ci in loadtest/) first", err)
	}
	for _, tt := range []struct {
		name, file, old, new, want string
	}{
		{"unmodified", "", "", "", ""},
		{"misspelt executor", "lib/profiles.js", "executor: 'constant-vus'", "executor: 'constant-vu'",
			`Type '"constant-vu"' is not assignable`},
		{"http.gett", "lib/profiles.js", "http.get(", "http.gett(",
			"Property 'gett' does not exist"},
		{"misspelt option", "lib/profiles.js", "  thresholds:", "  treshholds:",
			"'treshholds' does not exist in type 'StrictOptions'"},
		{"misspelt scenario option", "lib/profiles.js", " duration: profile.duration", " durration: profile.duration",
			"'durration' does not exist in type 'ConstantVUsScenario'"},
		{"option of another executor", "lib/profiles.js", " vus: profile.vus,", " vus: profile.vus, rate: 5,",
			"'rate' does not exist in type 'ConstantVUsScenario'"},
		{"misspelt profile field", "lib/profiles.js", "stages: profile.stages", "stages: profile.stage",
			"Property 'stage' does not exist on type 'RampingArrivalRate'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyLoadtest(t, filepath.Join(root, "loadtest"))
			if tt.file != "" {
				path := filepath.Join(dir, tt.file)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), tt.old) {
					t.Fatalf("%s no longer contains %q: update this test", tt.file, tt.old)
				}
				if err := os.WriteFile(path, []byte(strings.Replace(string(b), tt.old, tt.new, 1)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out, err := exec.Command(node, tsc, "-p", dir).CombinedOutput()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("tsc rejects the shipped scripts: %v\n%s", err, out)
			case tt.want != "" && err == nil:
				t.Fatalf("tsc accepted %s with %q", tt.file, tt.new)
			case tt.want != "" && !strings.Contains(string(out), tt.want):
				t.Fatalf("tsc failed, but not with %q:\n%s", tt.want, out)
			}
		})
	}
}

// copyLoadtest copies the scripts, profiles.json and tsconfig.json of src
// to a new temporary directory and links its node_modules there.
func copyLoadtest(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		switch {
		case d.IsDir() && d.Name() == "node_modules":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		case strings.HasSuffix(rel, ".js") || rel == "tsconfig.json" || rel == "profiles.json":
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(src, "node_modules"), filepath.Join(dst, "node_modules")); err != nil {
		t.Fatal(err)
	}
	return dst
}
