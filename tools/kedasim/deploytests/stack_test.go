package deploytests

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/internal/awscheck"
)

var cfnSchema = sync.OnceValues(awscheck.LoadCFNSchema)

// stackTemplate is deploy/aws/stack.yaml, expanded, resolved and checked
// against the CloudFormation resource types.
func stackTemplate(t *testing.T) *awscheck.Template {
	t.Helper()
	s, err := cfnSchema()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(svctest.RepoRoot(t), "deploy", "aws", "stack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := s.CheckTemplate(b)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// TestStackCreatesWhatTheOverlaysUse: both queues with a dead-letter queue
// (3 receives, the DLQ keeping messages longer), the six repositories the
// images go to (scan on push), the AMP workspace, and the EMF log group the
// collector's policy names, with a retention; named as params.env's
// defaults name them.
func TestStackCreatesWhatTheOverlaysUse(t *testing.T) {
	tmpl := stackTemplate(t)
	_, params := readParams(t, filepath.Join(svctest.RepoRoot(t), paramsFile))
	byType := map[string][]string{}
	for id, r := range tmpl.Resources {
		byType[r.Type] = append(byType[r.Type], id)
	}
	num := func(v any) float64 { f, _ := v.(float64); return f }

	var queueNames []string
	for _, id := range byType["AWS::SQS::Queue"] {
		q := tmpl.Resources[id].Properties
		rp, ok := q["RedrivePolicy"].(map[string]any)
		if !ok {
			continue // a dead-letter queue
		}
		queueNames = append(queueNames, fmt.Sprint(q["QueueName"]))
		if num(rp["maxReceiveCount"]) != 3 {
			t.Errorf("%s: maxReceiveCount %v, want 3", id, rp["maxReceiveCount"])
		}
		dlqID, ok := strings.CutSuffix(strings.TrimPrefix(fmt.Sprint(rp["deadLetterTargetArn"]), "getatt:"), ".Arn")
		dlq, found := tmpl.Resources[dlqID]
		if !ok || !found || dlq.Type != "AWS::SQS::Queue" {
			t.Errorf("%s: deadLetterTargetArn %v is not a queue's Arn", id, rp["deadLetterTargetArn"])
			continue
		}
		// SQS's default retention is 4 days (345600 s) when unset.
		src, dst := num(q["MessageRetentionPeriod"]), num(dlq.Properties["MessageRetentionPeriod"])
		if src == 0 {
			src = 345600
		}
		if dst <= src {
			t.Errorf("%s keeps messages %v s, its dead-letter queue %s only %v s", id, src, dlqID, dst)
		}
	}
	slices.Sort(queueNames)
	wantQueues := []string{path.Base(params["SQS_WORKER_QUEUE_URL"]), path.Base(params["VIDEO_QUEUE_URL"])}
	slices.Sort(wantQueues)
	if !slices.Equal(queueNames, wantQueues) {
		t.Errorf("queues with a dead-letter queue %v, want the params.env queues %v", queueNames, wantQueues)
	}

	var repos []string
	for _, id := range byType["AWS::ECR::Repository"] {
		p := tmpl.Resources[id].Properties
		repos = append(repos, fmt.Sprint(p["RepositoryName"]))
		if sc, _ := p["ImageScanningConfiguration"].(map[string]any); sc["ScanOnPush"] != true {
			t.Errorf("%s: no scan on push", id)
		}
		if p["ImageTagMutability"] != "IMMUTABLE" {
			t.Errorf("%s: tags mutable: a re-push under a tag would not reach nodes that cached it", id)
		}
	}
	var wantRepos []string
	for _, i := range images {
		wantRepos = append(wantRepos, "keda-samples/"+i)
	}
	slices.Sort(repos)
	slices.Sort(wantRepos)
	if !slices.Equal(repos, wantRepos) {
		t.Errorf("repositories %v, want %v", repos, wantRepos)
	}

	if n := len(byType["AWS::APS::Workspace"]); n != 1 {
		t.Errorf("%d AMP workspaces, want 1", n)
	}
	groups := byType["AWS::Logs::LogGroup"]
	if len(groups) != 1 {
		t.Fatalf("log groups %v, want the EMF one", groups)
	}
	lg := tmpl.Resources[groups[0]].Properties
	if want := "/metrics/" + params["CLOUDWATCH_NAMESPACE"]; lg["LogGroupName"] != want {
		t.Errorf("log group %v, want %s (the collector's policy and awsemf's default)", lg["LogGroupName"], want)
	}
	if num(lg["RetentionInDays"]) <= 0 {
		t.Errorf("log group retention %v: the EMF events would never expire", lg["RetentionInDays"])
	}
}

// stackOutputParams are the params.env values the stack knows; the others
// (roles, the OIDC provider, the cluster's name, the tag, the namespace)
// come from deploy/eksctl, make push and the user.
var stackOutputParams = []string{"AWS_ACCOUNT_ID", "AWS_REGION", "ECR_REGISTRY", "SQS_WORKER_QUEUE_URL", "VIDEO_QUEUE_URL", "AMP_WORKSPACE_ID", "CLOUDWATCH_NAMESPACE"}

// TestParamsFromStackWritesEveryOutput runs deploy/aws/params-from-stack.sh
// (make params-from-stack) on the template's outputs, as describe-stacks
// prints them, with values unlike any default: each lands on its
// parameter, the file still parses, nothing else changes; an output
// without a parameter is refused and leaves the file as it was.
func TestParamsFromStackWritesEveryOutput(t *testing.T) {
	root := svctest.RepoRoot(t)
	tmpl := stackTemplate(t)
	var lines strings.Builder
	var got []string
	for _, k := range slices.Sorted(maps.Keys(tmpl.Outputs)) {
		name := strings.ToUpper(regexp.MustCompile(`([a-z0-9])([A-Z])`).ReplaceAllString(k, "${1}_${2}"))
		got = append(got, name)
		fmt.Fprintf(&lines, "%s\t%s\n", k, changed[name])
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(stackOutputParams))
	if !slices.Equal(got, want) {
		t.Fatalf("the stack's outputs set %v, want %v", got, want)
	}
	orig, err := os.ReadFile(filepath.Join(root, paramsFile))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "params.env")
	if err := os.WriteFile(file, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(input string) error {
		cmd := exec.Command("bash", filepath.Join(root, "deploy", "aws", "params-from-stack.sh"), file)
		cmd.Stdin = strings.NewReader(input)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := run(lines.String()); err != nil {
		t.Fatal(err)
	}
	keys, defaults := readParams(t, filepath.Join(root, paramsFile))
	_, vals := readParams(t, file)
	for _, k := range keys {
		w := defaults[k]
		if slices.Contains(stackOutputParams, k) {
			w = changed[k]
		}
		if vals[k] != w {
			t.Errorf("%s = %q, want %q", k, vals[k], w)
		}
	}
	before, _ := os.ReadFile(file)
	if err := run("NotAParameter\tx\n"); err == nil {
		t.Error("an output without a parameter line was accepted")
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Error("a refused run changed the file")
	}
}
