package deploytests

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/internal/localoverlay"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

// localE2EAllowed is every field components/local-e2e may add, remove or
// change, as patterns over flattened paths ("Kind:field.path", list items
// by their name or type, * = one path segment, a trailing ** = anything
// below). Nothing that decides the replica count is here: metricType, the
// query or expression, targetMetricValue/threshold/queueLength, the min and
// max replica counts and the scaling strategy must stay as shipped.
var localE2EAllowed = func() []string {
	pod := []string{
		"nodeName",
		"tolerations.**",
		"containers[*].image",
		"initContainers[*].image",
		// Static test credentials, the local AWS endpoints, HOST = pod IP.
		"containers[*].env[AWS_ACCESS_KEY_ID].**",
		"containers[*].env[AWS_SECRET_ACCESS_KEY].**",
		"containers[*].env[AWS_ENDPOINT_URL_SQS].**",
		"containers[*].env[AWS_ENDPOINT_URL_CLOUDWATCH].**",
		"containers[*].env[AWS_ENDPOINT_URL_CLOUDWATCH_LOGS].**",
		"containers[*].env[HOST].**",
		"initContainers[*].env[AWS_ACCESS_KEY_ID].**",
		"initContainers[*].env[AWS_SECRET_ACCESS_KEY].**",
		"initContainers[*].env[AWS_ENDPOINT_URL_CLOUDWATCH_LOGS].**",
		// Endpoints that are AWS or a Service name in a cluster.
		"containers[*].env[QUEUE_URL].value",
		"containers[*].env[AMP_REMOTE_WRITE_URL].value",
		"containers[*].env[OTEL_EXPORTER_OTLP_ENDPOINT].value",
		"containers[*].env[RESULT_ANALYZER_URL].value",
		// sqsworker's simulated work per message (work-sqsworker.yaml).
		"containers[*].env[PROCESS_MIN_DELAY].**",
		"containers[*].env[PROCESS_MAX_DELAY].**",
		// videoencoder's encode and idle times (work-videoencoder.yaml).
		"containers[*].env[PROCESS_SLEEP_TIME].**",
		"containers[*].env[IDLE_TIMEOUT].**",
	}
	var out []string
	for _, p := range pod {
		out = append(out,
			"Deployment:spec.template.spec."+p,
			"Job:spec.template.spec."+p,
			"ScaledJob:spec.jobTargetRef.template.spec."+p)
	}
	trigger := []string{"awsEndpoint", "queueURL", "serverAddress"}
	for _, f := range trigger {
		out = append(out, "ScaledObject:spec.triggers[*].metadata."+f, "ScaledJob:spec.triggers[*].metadata."+f)
	}
	return append(out,
		"ScaledJob:spec.pollingInterval",
		// Static credentials instead of the operator's IRSA role.
		"TriggerAuthentication:spec.**",
	)
}()

// localE2EWindowsAllowed is what components/local-e2e-windows may change on
// top: the ScaledObjects' time windows, nothing else.
var localE2EWindowsAllowed = []string{
	"ScaledObject:spec.pollingInterval",
	"ScaledObject:spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds",
}

// TestLocalE2EChangesOnlyWhatMustDiffer: overlay + components/local-e2e
// (what make e2e applies), alone and with components/local-e2e-windows,
// differs from the shipped overlay only in the allow-listed fields, has the
// same objects, and leaves no AWS endpoint, ECR image or unplaced pod
// behind. webapi, its answer times and the shipped windows are untouched
// without local-e2e-windows.
func TestLocalE2EChangesOnlyWhatMustDiffer(t *testing.T) {
	for _, windows := range []bool{false, true} {
		t.Run(fmt.Sprintf("windows=%v", windows), func(t *testing.T) { testLocalE2E(t, windows) })
	}
}

func testLocalE2E(t *testing.T, windows bool) {
	root := svctest.RepoRoot(t)
	component := filepath.Join(root, "deploy", "kustomize", "components", "local-e2e")
	var extra []string
	patterns := localE2EAllowed
	if windows {
		extra = append(extra, filepath.Join(root, "deploy", "kustomize", "components", "local-e2e-windows"))
		patterns = append(slices.Clone(patterns), localE2EWindowsAllowed...)
	}
	// Values unlike the component's own defaults, so a field that kept a
	// default (or never got a value) shows.
	values, err := localoverlay.ReadEnv(filepath.Join(component, localoverlay.EnvFile))
	if err != nil {
		t.Fatal(err)
	}
	for k := range values {
		values[k] = "http://127.0.0.1:1/" + strings.ToLower(k)
	}
	allowed := compilePatterns(patterns)
	eachOverlay(t, func(t *testing.T, overlay string, shipped []manifests.Object) {
		m, err := localoverlay.Render(t.TempDir(), filepath.Join(root, "deploy", "kustomize", "overlays", overlay), component, values, extra...)
		if err != nil {
			t.Fatal(err)
		}
		local := objectsOf(t, m)
		byID := func(objs []manifests.Object) map[string]manifests.Object {
			out := map[string]manifests.Object{}
			for _, o := range objs {
				out[o.Kind+"/"+o.Namespace+"/"+o.Name] = o
			}
			return out
		}
		s, l := byID(shipped), byID(local)
		if len(s) != len(l) {
			t.Errorf("shipped overlay has %d objects, with local-e2e %d", len(s), len(l))
		}
		var changed []string
		for id, so := range s {
			lo, ok := l[id]
			if !ok {
				t.Errorf("%s: gone with local-e2e", id)
				continue
			}
			for _, p := range diffPaths(flatten(so.Map), flatten(lo.Map)) {
				if !matchesAny(allowed, so.Kind+":"+p) {
					t.Errorf("%s: local-e2e changes %s, which is not on the allow-list", id, p)
				}
				changed = append(changed, id+" "+p)
			}
		}
		for id := range l {
			if _, ok := s[id]; !ok {
				t.Errorf("%s: added by local-e2e", id)
			}
		}
		if len(changed) == 0 {
			t.Fatal("local-e2e changed nothing")
		}
		checkLocal(t, local)
	})
}

// checkLocal: every pod runs on the kwok node with a local image, and no
// URL points at AWS any more (role ARNs are names, not endpoints; the
// collector's config files mention AMP in comments only).
func checkLocal(t *testing.T, objs []manifests.Object) {
	t.Helper()
	for _, o := range objs {
		flat := flatten(o.Map)
		for p, v := range flat {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
				// Loopback, or the pod's own address (the sidecar's collector).
				if !strings.HasPrefix(s, "http://127.0.0.1:") && !strings.HasPrefix(s, "http://$(MY_POD_IP):") {
					t.Errorf("%s %s = %q points outside this machine", o, p, s)
				}
			}
			if strings.HasPrefix(p, "spec.triggers[aws-") && strings.HasSuffix(p, ".metadata.awsRegion") {
				if _, ok := flat[strings.TrimSuffix(p, "awsRegion")+"awsEndpoint"]; !ok {
					t.Errorf("%s %s: trigger without awsEndpoint", o, p)
				}
			}
			if strings.HasSuffix(p, ".image") && !strings.HasPrefix(s, "local/") {
				t.Errorf("%s %s = %q is no local image", o, p, s)
			}
			if strings.HasSuffix(p, ".value") && strings.Contains(s, "from-local-env") {
				t.Errorf("%s %s = %q never got its local value", o, p, s)
			}
		}
		prefix := map[string]string{"Deployment": "spec.template.spec", "Job": "spec.template.spec", "ScaledJob": "spec.jobTargetRef.template.spec"}[o.Kind]
		if prefix != "" && flat[prefix+".nodeName"] != "kwok-node" {
			t.Errorf("%s: pod template not on kwok-node (nodeName %v)", o, flat[prefix+".nodeName"])
		}
	}
}

// flatten maps every leaf of v to its path: map keys joined by ".", list
// items as [name] or [type] when they have one (containers, env, triggers),
// else [index]. An empty map or list is a leaf.
func flatten(v any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				out[prefix] = x
			}
			for k, e := range x {
				walk(join(prefix, k), e)
			}
		case []any:
			if len(x) == 0 {
				out[prefix] = x
			}
			for i, e := range x {
				key := fmt.Sprint(i)
				if m, ok := e.(map[string]any); ok {
					if n, ok := m["name"].(string); ok {
						key = n
					} else if n, ok := m["type"].(string); ok {
						key = n
					}
				}
				walk(prefix+"["+key+"]", e)
			}
		default:
			out[prefix] = x
		}
	}
	walk("", v)
	return out
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// diffPaths is every path added, removed or changed from a to b, sorted.
func diffPaths(a, b map[string]any) []string {
	var out []string
	for p, av := range a {
		if bv, ok := b[p]; !ok || fmt.Sprint(av) != fmt.Sprint(bv) {
			out = append(out, p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// compilePatterns turns "Kind:a.b[*].c.**" patterns into anchored regexps:
// * is one name or list key, a trailing .** anything below (or nothing).
func compilePatterns(patterns []string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, p := range patterns {
		tail := ""
		if rest, ok := strings.CutSuffix(p, ".**"); ok {
			p, tail = rest, `(\..*|\[.*)?`
		}
		q := regexp.QuoteMeta(p)
		q = strings.ReplaceAll(q, `\[\*\]`, `\[[^\]]*\]`)
		q = strings.ReplaceAll(q, `\*`, `[^.\[]*`)
		out = append(out, regexp.MustCompile("^"+q+tail+"$"))
	}
	return out
}

func matchesAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
