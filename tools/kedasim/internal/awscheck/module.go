// Package awscheck checks the declarative AWS side of the deploy tree with
// the schemas its own tools publish: the CloudFormation template in
// deploy/aws against the CloudFormation resource types (goformation's
// schema, generated from AWS's resource specification), and the eksctl
// ClusterConfig in deploy/eksctl against the JSON schema eksctl generates
// from its Go API types. Both schemas reject a property they do not know.
package awscheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// RequiredModuleDir is where the Go command keeps a module that this module
// requires (go list -m), at the version go.mod pins.
func RequiredModuleDir(path string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	dir := strings.TrimSpace(string(out))
	if err == nil && dir == "" {
		err = fmt.Errorf("go list -m %s: no directory (run go mod download)", path)
	}
	return dir, err
}

// DownloadedModuleDir downloads module path@version through the Go module
// proxy (go mod download, checked against the checksum database) without
// making it a requirement of this module, and returns its directory. For a
// module whose files are read but whose Go packages are never built.
func DownloadedModuleDir(pathAtVersion string) (string, error) {
	tmp, err := os.MkdirTemp("", "awscheck-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "mod", "download", "-json", pathAtVersion)
	cmd.Dir = tmp // outside any module: nothing's go.mod changes
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); jerr == nil && m.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", pathAtVersion, m.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %v\n%s", pathAtVersion, err, stderr.String())
	}
	if m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no directory in %q", pathAtVersion, out)
	}
	return m.Dir, nil
}
