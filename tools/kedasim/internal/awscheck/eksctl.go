package awscheck

import (
	"bytes"
	"path/filepath"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// EksctlModule is the eksctl release whose ClusterConfig schema
// (pkg/apis/eksctl.io/v1alpha5/assets/schema.json, generated from its Go API
// types, additionalProperties false on every object) checks
// deploy/eksctl/cluster.yaml. Its files are read, its Go packages never
// built: eksctl's module graph (the AWS SDK's services, Kubernetes at its
// own pins, CloudFormation generators) would change the versions KEDA
// builds with in this module and add minutes to a cold build, for a check
// the schema makes as strictly (the file is ~120 KB of JSON).
const EksctlModule = "github.com/weaveworks/eksctl@v0.215.0"

// EksctlSchema is eksctl's compiled ClusterConfig schema.
type EksctlSchema struct{ s *jsonschema.Schema }

// LoadEksctlSchema downloads EksctlModule (go mod download) and compiles
// its schema.
func LoadEksctlSchema() (*EksctlSchema, error) {
	dir, err := DownloadedModuleDir(EksctlModule)
	if err != nil {
		return nil, err
	}
	const url = "file:///eksctl-schema.json"
	var c *jsonschema.Compiler
	if _, err := addSchemaFile(&c, url, filepath.Join(dir, "pkg", "apis", "eksctl.io", "v1alpha5", "assets", "schema.json")); err != nil {
		return nil, err
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, err
	}
	return &EksctlSchema{s}, nil
}

// Check validates a ClusterConfig (YAML) against the schema.
func (e *EksctlSchema) Check(clusterConfig []byte) error {
	j, err := yaml.YAMLToJSON(clusterConfig)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return err
	}
	return e.s.Validate(v)
}
