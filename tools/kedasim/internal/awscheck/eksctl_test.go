package awscheck

import (
	"strings"
	"sync"
	"testing"
)

var eksctlSchema = sync.OnceValues(LoadEksctlSchema)

// TestEksctlSchemaRejectsMistakes: the schema is strict where a user errs.
func TestEksctlSchemaRejectsMistakes(t *testing.T) {
	s, err := eksctlSchema()
	if err != nil {
		t.Fatal(err)
	}
	const base = "apiVersion: eksctl.io/v1alpha5\nkind: ClusterConfig\nmetadata: {name: x, region: us-east-1, version: \"1.33\"}\n"
	if err := s.Check([]byte(base + "managedNodeGroups: [{name: a, instanceType: m7g.large}]\n")); err != nil {
		t.Fatalf("a minimal ClusterConfig: %v", err)
	}
	for _, c := range []struct{ name, doc, want string }{
		{"misspelt top-level key", base + "managedNodeGroup: [{name: a}]\n", "managedNodeGroup"},
		{"misspelt node group key", base + "managedNodeGroups: [{name: a, instanceTyp: m7g.large}]\n", "instanceTyp"},
		{"misspelt association key", base + "iam: {podIdentityAssociations: [{namespace: a, serviceAcountName: b}]}\n", "serviceAcountName"},
		{"misspelt addon key", base + "addons: [{name: vpc-cni, configurationValue: x}]\n", "configurationValue"},
		{"wrong type", base + "managedNodeGroups: [{name: a, minSize: one}]\n", "minSize"},
		{"wrong apiVersion", strings.Replace(base, "v1alpha5", "v1alpha4", 1), "apiVersion"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := s.Check([]byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %s", err, c.want)
			}
		})
	}
}
