package deploytests

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

// podTemplate is one pod the overlays would run, wherever it is templated.
type podTemplate struct {
	owner string
	meta  metav1.ObjectMeta
	spec  corev1.PodSpec
}

// podTemplates returns every pod template in objs: Deployments, Jobs and
// ScaledJobs' job templates.
func podTemplates(t *testing.T, objs []manifests.Object) []podTemplate {
	t.Helper()
	var pods []podTemplate
	for _, o := range objs {
		v, err := manifests.DecodeStrict(o)
		if err != nil {
			continue // reported by TestObjectsDecodeStrictlyIntoTheirGoTypes
		}
		switch w := v.(type) {
		case *appsv1.Deployment:
			pods = append(pods, podTemplate{o.String(), w.Spec.Template.ObjectMeta, w.Spec.Template.Spec})
		case *batchv1.Job:
			pods = append(pods, podTemplate{o.String(), w.Spec.Template.ObjectMeta, w.Spec.Template.Spec})
		case *kedav1alpha1.ScaledJob:
			pods = append(pods, podTemplate{o.String(), w.Spec.JobTargetRef.Template.ObjectMeta, w.Spec.JobTargetRef.Template.Spec})
		}
	}
	if len(pods) == 0 {
		t.Fatal("no pod templates rendered")
	}
	return pods
}

func allContainers(spec corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...)
}

var psaEvaluator = sync.OnceValues(func() (policy.Evaluator, error) {
	return policy.NewEvaluator(policy.DefaultChecks(), nil)
})

// restrictedViolations runs the upstream Pod Security Admission checks (what
// the API server enforces with the namespace label
// pod-security.kubernetes.io/enforce: restricted) on a pod template.
func restrictedViolations(t *testing.T, p podTemplate) []string {
	t.Helper()
	evaluator, err := psaEvaluator()
	if err != nil {
		t.Fatal(err)
	}
	restricted := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	var failed []string
	for _, r := range evaluator.EvaluatePod(restricted, &p.meta, &p.spec) {
		if !r.Allowed {
			failed = append(failed, r.ForbiddenReason+": "+r.ForbiddenDetail)
		}
	}
	return failed
}

// TestEveryPodPassesPodSecurityRestricted: every pod template of every
// overlay and combination passes Pod Security "restricted".
func TestEveryPodPassesPodSecurityRestricted(t *testing.T) {
	eachVariant(t, func(t *testing.T, _ string, objs []manifests.Object) {
		for _, p := range podTemplates(t, objs) {
			if failed := restrictedViolations(t, p); len(failed) > 0 {
				t.Errorf("%s violates restricted: %s", p.owner, strings.Join(failed, "; "))
			}
		}
		for _, o := range objs {
			if o.Kind == "Namespace" {
				if got := o.Map["metadata"].(map[string]any)["labels"].(map[string]any)[psaapi.EnforceLevelLabel]; got != "restricted" {
					t.Errorf("namespace %s enforces %v, want restricted", o.Name, got)
				}
			}
		}
	})
	// The evaluator does see a violation: a container without a
	// securityContext fails.
	if failed := restrictedViolations(t, podTemplate{spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}); len(failed) == 0 {
		t.Fatal("a pod without any securityContext passed restricted")
	}
}

// TestEveryContainerIsBounded: read-only root filesystem, requests and
// limits, GOMEMLIMIT below the memory limit, probes on long-running
// containers, a grace period above the services' own shutdown budget.
func TestEveryContainerIsBounded(t *testing.T) {
	eachVariant(t, func(t *testing.T, _ string, objs []manifests.Object) {
		for _, p := range podTemplates(t, objs) {
			for _, c := range allContainers(p.spec) {
				where := fmt.Sprintf("%s container %s", p.owner, c.Name)
				if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("%s: root filesystem not read-only", where)
				}
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					if _, ok := c.Resources.Requests[r]; !ok {
						t.Errorf("%s: no %s request", where, r)
					}
					if _, ok := c.Resources.Limits[r]; !ok {
						t.Errorf("%s: no %s limit", where, r)
					}
				}
				env := envOf(c)
				limit := c.Resources.Limits[corev1.ResourceMemory]
				if gml, ok := env["GOMEMLIMIT"]; !ok {
					t.Errorf("%s: no GOMEMLIMIT", where)
				} else if q, err := resource.ParseQuantity(strings.TrimSuffix(gml, "B")); err != nil {
					t.Errorf("%s: GOMEMLIMIT %q: %v", where, gml, err)
				} else if q.Cmp(limit) >= 0 {
					t.Errorf("%s: GOMEMLIMIT %s not below the memory limit %s", where, gml, limit.String())
				}
				longRunning := p.spec.RestartPolicy != corev1.RestartPolicyNever
				if longRunning && c.LivenessProbe == nil {
					t.Errorf("%s: no liveness probe", where)
				}
				if longRunning && c.ReadinessProbe == nil && c.StartupProbe == nil && c.RestartPolicy == nil {
					t.Errorf("%s: no readiness probe", where)
				}
				budget := durationEnv(t, env, "SHUTDOWN_DELAY") + durationEnv(t, env, "SHUTDOWN_TIMEOUT")
				if grace := p.spec.TerminationGracePeriodSeconds; budget > 0 && (grace == nil || time.Duration(*grace)*time.Second <= budget) {
					t.Errorf("%s: terminationGracePeriodSeconds %v not above its shutdown budget %s", where, grace, budget)
				}
			}
		}
	})
}

func envOf(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

func durationEnv(t *testing.T, env map[string]string, name string) time.Duration {
	t.Helper()
	v, ok := env[name]
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Errorf("%s=%q: %v", name, v, err)
	}
	return d
}

// TestLabelsAndDisruptionBudgets: app.kubernetes.io labels on every object
// and pod; every Deployment has a PodDisruptionBudget whose selector picks
// exactly its pods.
func TestLabelsAndDisruptionBudgets(t *testing.T) {
	eachVariant(t, func(t *testing.T, _ string, objs []manifests.Object) {
		var pdbs []*policyv1.PodDisruptionBudget
		var deployments []*appsv1.Deployment
		for _, o := range objs {
			md := o.Map["metadata"].(map[string]any)
			lbls, _ := md["labels"].(map[string]any)
			if lbls["app.kubernetes.io/part-of"] != "keda-samples" {
				t.Errorf("%s: no app.kubernetes.io/part-of label", o)
			}
			v, err := manifests.DecodeStrict(o)
			if err != nil {
				continue
			}
			switch w := v.(type) {
			case *policyv1.PodDisruptionBudget:
				pdbs = append(pdbs, w)
			case *appsv1.Deployment:
				deployments = append(deployments, w)
			}
		}
		for _, p := range podTemplates(t, objs) {
			if p.meta.Labels["app.kubernetes.io/name"] == "" {
				t.Errorf("%s: pods without app.kubernetes.io/name", p.owner)
			}
		}
		for _, d := range deployments {
			pods := labels.Set(d.Spec.Template.Labels)
			n := 0
			for _, pdb := range pdbs {
				sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				if err != nil || pdb.Spec.Selector == nil || sel.Empty() {
					t.Errorf("PodDisruptionBudget %s: selector %v", pdb.Name, pdb.Spec.Selector)
					continue
				}
				if sel.Matches(pods) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("Deployment %s: %d PodDisruptionBudgets select its pods, want 1", d.Name, n)
			}
		}
	})
}
