// Package localoverlay renders a shipped overlay with one more component
// appended, for the e2e only: overlay + components/local-e2e, with the
// component's local.env replaced by the values of this run (the ports
// chosen at run time).
//
// An overlay's components are ordered (params first, common last), so the
// extra component cannot be spliced into the overlay's own list. Instead a
// kustomization is generated in a temporary directory: the overlay directory
// is its one resource (rendered exactly as users render it, params and
// common included) and a copy of the component, with the run's local.env,
// is its one component, applied to the rendered objects.
package localoverlay

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// EnvFile is the component's values file the run replaces.
const EnvFile = "local.env"

// Render builds overlayDir + componentDir (+ extra components, listed
// after it) in a new directory under workDir and returns the rendered
// objects. values replaces the component's EnvFile; it must name exactly
// the keys that file names (a missing or unknown key is an error, so a
// renamed value cannot silently keep its default). With nil values the
// component's own file is used.
func Render(workDir, overlayDir, componentDir string, values map[string]string, extra ...string) (resmap.ResMap, error) {
	dir, err := os.MkdirTemp(workDir, "local-overlay-")
	if err != nil {
		return nil, fmt.Errorf("local overlay: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("local overlay: %w", err)
	}
	overlayAbs, err := filepath.Abs(overlayDir)
	if err != nil {
		return nil, fmt.Errorf("local overlay: %w", err)
	}
	comp := filepath.Join(dir, "component")
	if err := copyFlat(componentDir, comp); err != nil {
		return nil, err
	}
	if values != nil {
		if err := writeEnv(filepath.Join(comp, EnvFile), values); err != nil {
			return nil, err
		}
	}
	// kustomize takes a directory resource only as a relative path.
	overlayRel, err := filepath.Rel(dir, overlayAbs)
	if err != nil {
		return nil, fmt.Errorf("local overlay: %w", err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
		"resources:\n- " + overlayRel + "\ncomponents:\n- component\n"
	for _, c := range extra {
		abs, err := filepath.Abs(c)
		if err != nil {
			return nil, fmt.Errorf("local overlay: %w", err)
		}
		rel, err := filepath.Rel(dir, abs)
		if err != nil {
			return nil, fmt.Errorf("local overlay: %w", err)
		}
		k += "- " + rel + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		return nil, fmt.Errorf("local overlay: %w", err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("local overlay: kustomize build %s + %s: %w", overlayDir, componentDir, err)
	}
	return m, nil
}

// copyFlat copies the files of src (a component has no subdirectories) to dst.
func copyFlat(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("local overlay: %w", err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("local overlay: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			return fmt.Errorf("local overlay: %s: component has a subdirectory %s", src, e.Name())
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("local overlay: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return fmt.Errorf("local overlay: %w", err)
		}
	}
	return nil
}

// ReadEnv reads KEY=value lines (comments and blank lines skipped).
func ReadEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("local overlay: %w", err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("local overlay: %s: not KEY=value: %q", path, line)
		}
		out[k] = v
	}
	return out, nil
}

// writeEnv replaces path (an existing env file) with values, which must have
// the same keys.
func writeEnv(path string, values map[string]string) error {
	old, err := ReadEnv(path)
	if err != nil {
		return err
	}
	var keys []string
	for k := range values {
		if _, ok := old[k]; !ok {
			return fmt.Errorf("local overlay: %s has no %s (it has %s)", EnvFile, k, strings.Join(slices.Sorted(maps.Keys(old)), ", "))
		}
		keys = append(keys, k)
	}
	for k := range old {
		if _, ok := values[k]; !ok {
			return fmt.Errorf("local overlay: no value for %s of %s", k, EnvFile)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if strings.ContainsAny(values[k], "\n") {
			return fmt.Errorf("local overlay: %s: value has a newline", k)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, values[k])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("local overlay: %w", err)
	}
	return nil
}
