package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Bins are the paths of the binaries `make cluster-bins` builds into its
// cache directory as <name>-<version>.
type Bins struct {
	Kwokctl, Kwok             string
	Etcd, KubeAPIServer       string
	KubeControllerManager     string
	KEDAOperator, KEDAAdapter string
	KubeVersion               string // of kube-apiserver, e.g. v1.36.3: kwokctl picks flags by it
}

// binEnv names, for each binary, the variable `make e2e` sets to its path.
var binEnv = []struct {
	name, env string
	field     func(*Bins) *string
}{
	{"kwokctl", "LOCALCLUSTER_KWOKCTL", func(b *Bins) *string { return &b.Kwokctl }},
	{"kwok", "LOCALCLUSTER_KWOK", func(b *Bins) *string { return &b.Kwok }},
	{"etcd", "LOCALCLUSTER_ETCD", func(b *Bins) *string { return &b.Etcd }},
	{"kube-apiserver", "LOCALCLUSTER_KUBE_APISERVER", func(b *Bins) *string { return &b.KubeAPIServer }},
	{"kube-controller-manager", "LOCALCLUSTER_KUBE_CONTROLLER_MANAGER", func(b *Bins) *string { return &b.KubeControllerManager }},
	{"keda-operator", "LOCALCLUSTER_KEDA_OPERATOR", func(b *Bins) *string { return &b.KEDAOperator }},
	{"keda-adapter", "LOCALCLUSTER_KEDA_ADAPTER", func(b *Bins) *string { return &b.KEDAAdapter }},
}

// DefaultBinDir is where `make cluster-bins` puts the binaries: one
// subdirectory per tools/kedasim/go.sum (CLUSTER_BIN in the Makefile).
func DefaultBinDir() string {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "keda-eks-samples", "cluster")
}

// BinsFromEnv returns the binaries named by the LOCALCLUSTER_* variables
// `make e2e` sets; a variable left unset falls back to the newest
// <name>-<version> in DefaultBinDir's subdirectories.
func BinsFromEnv() (Bins, error) {
	var b Bins
	var errs []error
	for _, e := range binEnv {
		p := os.Getenv(e.env)
		if p == "" {
			matches, _ := filepath.Glob(filepath.Join(DefaultBinDir(), "*", e.name+"-v*"))
			sort.Slice(matches, func(i, j int) bool { return modTime(matches[i]) > modTime(matches[j]) })
			if len(matches) == 0 {
				errs = append(errs, fmt.Errorf("%s: %s unset and no %s-v* under %s", e.name, e.env, e.name, DefaultBinDir()))
				continue
			}
			p = matches[0]
		}
		*e.field(&b) = p
	}
	if len(errs) > 0 {
		return b, fmt.Errorf("localcluster binaries (run `make cluster-bins`): %w", errors.Join(errs...))
	}
	// kube-apiserver-v1.36.3 → v1.36.3
	b.KubeVersion = strings.TrimPrefix(filepath.Base(b.KubeAPIServer), "kube-apiserver-")
	return b, b.check()
}

func modTime(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.ModTime().UnixNano()
}

// check reports the binaries that are not executable files.
func (b Bins) check() error {
	var errs []error
	for _, e := range binEnv {
		p := *e.field(&b)
		fi, err := os.Stat(p)
		switch {
		case p == "":
			errs = append(errs, fmt.Errorf("%s: no path", e.name))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", e.name, err))
		case fi.Mode()&0o111 == 0:
			errs = append(errs, fmt.Errorf("%s: %s is not executable", e.name, p))
		}
	}
	if b.KubeVersion == "" {
		errs = append(errs, errors.New("KubeVersion unset"))
	}
	return errors.Join(errs...)
}

// moduleDir is the module cache's copy of module path at the version the
// current module (tools/kedasim, where the tests run) requires.
func moduleDir(ctx context.Context, path string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", path)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find %s's module directory (go list -m): %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// kedaCRDDir finds KEDA's CRDs in the module cache: config/crd/bases of the
// KEDA version tools/kedasim requires.
func kedaCRDDir(ctx context.Context) (string, error) {
	keda, err := moduleDir(ctx, "github.com/kedacore/keda/v2")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(keda, "config", "crd", "bases")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("KEDA CRDs: %w", err)
	}
	return dir, nil
}

// nodeStagesOnly writes kwok's own node stages (node/fast's
// node-initialize and node/heartbeat-with-lease), as kwokctl would use by
// default, to path, and no pod stage. They come from the module cache's
// copy of the kwok version tools/kedasim pins (the kwok binary's).
func nodeStagesOnly(ctx context.Context, path string) (string, error) {
	kwok, err := moduleDir(ctx, "sigs.k8s.io/kwok")
	if err != nil {
		return "", err
	}
	var docs []string
	for _, f := range []string{"node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml"} {
		b, err := os.ReadFile(filepath.Join(kwok, "kustomize", "stage", f))
		if err != nil {
			return "", fmt.Errorf("kwok stages: %w", err)
		}
		docs = append(docs, strings.TrimPrefix(string(b), "---\n"))
	}
	if err := os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")), 0o644); err != nil {
		return "", fmt.Errorf("kwok stages: %w", err)
	}
	return path, nil
}
