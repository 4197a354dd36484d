package awscheck

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var cfnSchema = sync.OnceValues(LoadCFNSchema)

func stackTemplate(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "deploy", "aws", "stack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStackTemplateMatchesTheCloudFormationResourceTypes(t *testing.T) {
	s, err := cfnSchema()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := s.CheckTemplate([]byte(stackTemplate(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl.Resources) == 0 || len(tmpl.Outputs) == 0 {
		t.Fatalf("%d resources, %d outputs", len(tmpl.Resources), len(tmpl.Outputs))
	}
}

// TestStackTemplateCheckRejectsMistakes: each edit of the shipped template
// is an error that names what is wrong.
func TestStackTemplateCheckRejectsMistakes(t *testing.T) {
	s, err := cfnSchema()
	if err != nil {
		t.Fatal(err)
	}
	src := stackTemplate(t)
	for _, c := range []struct{ name, old, new, want string }{
		{"misspelt queue property", "MessageRetentionPeriod: 345600", "MessageRetentionPeriode: 345600", "MessageRetentionPeriode"},
		{"misspelt nested property", "ScanOnPush: true", "ScanOnPsuh: true", "ScanOnPsuh"},
		{"wrong property type", "ImageTagMutability: IMMUTABLE", "ImageTagMutability: [IMMUTABLE]", "ImageTagMutability"},
		{"unknown resource type", "Type: AWS::Logs::LogGroup", "Type: AWS::Logs::LogGroups", "AWS::Logs::LogGroups"},
		{"misspelt resource attribute", "    DeletionPolicy: Delete", "    DeletionPolicie: Delete", "DeletionPolicie"},
		{"misspelt top-level section", "\nOutputs:", "\nOutput:", "'Output'"},
		{"misspelt output field", "Description: params.env AWS_REGION", "Descripton: params.env AWS_REGION", "Descripton"},
		{"misspelt parameter field", "AllowedPattern:", "AllowPattern:", "AllowPattern"},
		{"Ref to nothing", "!Ref videoQueue", "!Ref videoQueues", "videoQueues"},
		{"GetAtt of nothing", `!GetAtt "&{Queue}DeadLetterQueue.Arn"`, `!GetAtt "&{Queue}DeadLetter.Arn"`, "DeadLetter.Arn"},
		{"Sub of nothing", `"${Prefix}-${Queue}-dlq"`, `"${Prefx}-${Queue}-dlq"`, "Prefx"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(src, c.old) {
				t.Fatalf("the template has no %q to change", c.old)
			}
			_, err := s.CheckTemplate([]byte(strings.Replace(src, c.old, c.new, 1)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("with %q: error %v, want one naming %q", c.new, err, c.want)
			}
		})
	}
}
