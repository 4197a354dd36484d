package deploytests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

// decodeAll decodes every object strictly into its Go type, in order.
func decodeAll(t *testing.T, objs []manifests.Object) []any {
	t.Helper()
	out := make([]any, len(objs))
	for i, o := range objs {
		v, err := manifests.DecodeStrict(o)
		if err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		out[i] = v
	}
	return out
}

// loadJob renders deploy/kustomize/load (what make load-cluster applies,
// before its PROFILE/TARGET patch) and returns its Job and scripts ConfigMap,
// each decoded strictly.
func loadJob(t *testing.T, dir string) (*batchv1.Job, *corev1.ConfigMap, []manifests.Object) {
	t.Helper()
	objs := render(t, dir)
	var job *batchv1.Job
	var cm *corev1.ConfigMap
	for i, v := range decodeAll(t, objs) {
		if j, ok := v.(*batchv1.Job); ok {
			job = j
		} else if c, ok := v.(*corev1.ConfigMap); ok {
			cm = c
		} else {
			t.Errorf("unexpected %s in the load kustomization", objs[i])
		}
	}
	if job == nil || cm == nil {
		t.Fatalf("rendered %v, want the k6 Job and its scripts ConfigMap", objs)
	}
	return job, cm, objs
}

// expandEnv resolves the container's env as the kubelet does: $(NAME) of
// an earlier variable, metadata.namespace from the pod's namespace.
func expandEnv(c corev1.Container, namespace string) map[string]string {
	env := map[string]string{}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			v = namespace
		}
		env[e.Name] = ref.ReplaceAllStringFunc(v, func(m string) string {
			if x, ok := env[m[2:len(m)-1]]; ok {
				return x
			}
			return m
		})
	}
	return env
}

// TestLoadJobRunsTheShippedScriptsAgainstTheService: the in-cluster k6 Job
// mounts every script of loadtest/ byte for byte, runs grafana/k6 pinned by
// digest, passes Pod Security restricted, cleans up after itself, and
// targets webapi's Service by its in-cluster name (port 80), which kube-proxy
// spreads over every ready pod.
func TestLoadJobRunsTheShippedScriptsAgainstTheService(t *testing.T) {
	root := svctest.RepoRoot(t)
	job, cm, objs := loadJob(t, filepath.Join(root, "deploy", "kustomize", "load"))
	_, params := readParams(t, filepath.Join(root, paramsFile))
	for _, o := range objs {
		if o.Namespace != params["NAMESPACE"] {
			t.Errorf("%s in namespace %q, want %q", o, o.Namespace, params["NAMESPACE"])
		}
		if o.Kind == "Namespace" {
			t.Errorf("the load kustomization renders a Namespace: make load-cluster-stop would delete the overlay's")
		}
	}
	spec := job.Spec.Template.Spec
	if job.Spec.TTLSecondsAfterFinished == nil || *job.Spec.TTLSecondsAfterFinished <= 0 {
		t.Error("no ttlSecondsAfterFinished: finished load Jobs would pile up")
	}
	if job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 {
		t.Errorf("backoffLimit %v: a failed threshold would run the load again", job.Spec.BackoffLimit)
	}
	if failed := restrictedViolations(t, podTemplate{job.Name, job.Spec.Template.ObjectMeta, spec}); len(failed) > 0 {
		t.Errorf("the k6 Job violates restricted: %s", strings.Join(failed, "; "))
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want k6 alone", len(spec.Containers))
	}
	c := spec.Containers[0]
	if !regexp.MustCompile(`^grafana/k6:[0-9]+\.[0-9]+\.[0-9]+@sha256:[0-9a-f]{64}$`).MatchString(c.Image) {
		t.Errorf("image %q is not grafana/k6:<version>@sha256:<digest>", c.Image)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("k6's root filesystem is writable")
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("k6 has no memory limit")
	}

	// Every script reaches the pod where the scripts' imports expect it.
	mounted := map[string]string{} // path under the mount -> ConfigMap key
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
			for _, it := range v.ConfigMap.Items {
				mounted[it.Path] = it.Key
			}
		}
	}
	var shipped []string
	for _, pattern := range []string{"*.js", "lib/*.js", "profiles.json"} {
		m, _ := filepath.Glob(filepath.Join(root, "loadtest", pattern))
		for _, f := range m {
			rel, _ := filepath.Rel(filepath.Join(root, "loadtest"), f)
			shipped = append(shipped, filepath.ToSlash(rel))
		}
	}
	if len(shipped) < 3 {
		t.Fatalf("found %v in loadtest/", shipped)
	}
	for _, rel := range shipped {
		key, ok := mounted[rel]
		if !ok {
			t.Errorf("loadtest/%s is not mounted in the k6 pod", rel)
			continue
		}
		want, _ := os.ReadFile(filepath.Join(root, "loadtest", rel))
		if cm.Data[key] != string(want) {
			t.Errorf("ConfigMap key %s differs from loadtest/%s", key, rel)
		}
	}

	env := expandEnv(c, job.Namespace)
	script := strings.ReplaceAll(strings.Join(c.Args, " "), "$(PROFILE)", env["PROFILE"])
	if !slices.Contains(c.Args, "run") || !strings.Contains(script, "/scripts/"+env["PROFILE"]+".js") || mounted[env["PROFILE"]+".js"] == "" {
		t.Errorf("args %v with PROFILE=%s do not run a mounted script", c.Args, env["PROFILE"])
	}
	if want := "http://webapi." + params["NAMESPACE"] + ".svc"; env["BASE_URL"] != want {
		t.Errorf("BASE_URL resolves to %q, want %q (webapi's Service)", env["BASE_URL"], want)
	}
	// webapi's Service answers on port 80 (no port in BASE_URL).
	for _, o := range renderOverlay(t, root, "gateway") {
		if o.Kind == "Service" && o.Name == "webapi" {
			v, _ := manifests.DecodeStrict(o)
			svc := v.(*corev1.Service)
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 {
				t.Errorf("Service webapi ports %+v, want 80", svc.Spec.Ports)
			}
		}
	}
}

// TestLoadJobDecodingRejectsAMisspeltKey: the strict decoding the load
// Job goes through rejects a misspelt field.
func TestLoadJobDecodingRejectsAMisspeltKey(t *testing.T) {
	_, _, objs := loadJob(t, filepath.Join(svctest.RepoRoot(t), "deploy", "kustomize", "load"))
	for _, o := range objs {
		if o.Kind != "Job" {
			continue
		}
		bad := o
		bad.YAML = []byte(strings.Replace(string(o.YAML), "ttlSecondsAfterFinished:", "ttlSecondAfterFinished:", 1))
		if string(bad.YAML) == string(o.YAML) {
			t.Fatal("the Job has no ttlSecondsAfterFinished to misspell")
		}
		if _, err := manifests.DecodeStrict(bad); err == nil || !strings.Contains(err.Error(), "ttlSecondAfterFinished") {
			t.Fatalf("a misspelt ttlSecondsAfterFinished was accepted: %v", err)
		}
		return
	}
	t.Fatal("no Job rendered")
}

// TestLoadClusterProfileParameter: make load-render (what make load-cluster
// applies) sets the profile and its target Service, and refuses a profile
// that is not a shipped script.
func TestLoadClusterProfileParameter(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not on PATH (make load-render runs kubectl kustomize)")
	}
	root := svctest.RepoRoot(t)
	_, params := readParams(t, filepath.Join(root, paramsFile))
	for profile, target := range map[string]string{"rps": "webapi", "ramp": "webapi", "send": "sqsworker"} {
		cmd := exec.Command("make", "-s", "--no-print-directory", "load-render", "PROFILE="+profile, "BIN="+t.TempDir())
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("make load-render PROFILE=%s: %v", profile, err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "all.yaml"), out, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("resources: [all.yaml]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		job, _, _ := loadJob(t, dir)
		env := expandEnv(job.Spec.Template.Spec.Containers[0], job.Namespace)
		if env["PROFILE"] != profile || env["BASE_URL"] != "http://"+target+"."+params["NAMESPACE"]+".svc" {
			t.Errorf("PROFILE=%s: the Job runs %s against %s", profile, env["PROFILE"], env["BASE_URL"])
		}
	}
	cmd := exec.Command("make", "-s", "load-render", "PROFILE=nope")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "PROFILE must be one of") {
		t.Errorf("make load-render PROFILE=nope: %v\n%s", err, out)
	}
}

// TestNetworkPoliciesLetTheLoadIn: with components/network-policies, the
// pods behind each Service the k6 Job targets admit its traffic (a policy
// selects them with a rule open to any source on the Service's port).
func TestNetworkPoliciesLetTheLoadIn(t *testing.T) {
	targets := map[string]string{"sidecar": "webapi", "gateway": "webapi", "cloudwatch-direct": "webapi", "amp": "webapi", "sqs-worker": "sqsworker"}
	for overlay, target := range targets {
		t.Run(overlay, func(t *testing.T) {
			objs := renderVariant(t, overlay, []string{"network-policies"})
			var svc *corev1.Service
			var pols []*networkingv1.NetworkPolicy
			for _, v := range decodeAll(t, objs) {
				switch x := v.(type) {
				case *corev1.Service:
					if x.Name == target {
						svc = x
					}
				case *networkingv1.NetworkPolicy:
					pols = append(pols, x)
				}
			}
			if svc == nil || len(pols) == 0 {
				t.Fatalf("Service %s %v, %d NetworkPolicies", target, svc != nil, len(pols))
			}
			pods := labels.Set(svc.Spec.Selector)
			port := svc.Spec.Ports[0].TargetPort.String()
			open := false
			for _, p := range pols {
				sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
				if err != nil || !sel.Matches(pods) {
					continue
				}
				for _, r := range p.Spec.Ingress {
					for _, pp := range r.Ports {
						if len(r.From) == 0 && pp.Port != nil && pp.Port.String() == port {
							open = true
						}
					}
				}
			}
			if !open {
				t.Errorf("no NetworkPolicy admits the k6 pod to %s's port %s", target, port)
			}
		})
	}
}

// TestALBIngressComponent: components/alb-ingress, added to each HTTP
// overlay (alone and with network-policies), renders an Ingress of class
// alb whose backend is webapi's Service and port, with the AWS Load
// Balancer Controller's annotations for pod-IP targets and webapi's
// readiness path; a misspelt field in it is rejected.
func TestALBIngressComponent(t *testing.T) {
	for _, overlay := range []string{"sidecar", "gateway", "cloudwatch-direct", "amp"} {
		for _, comps := range [][]string{{"alb-ingress"}, {"network-policies", "alb-ingress"}} {
			t.Run(variantName(overlay, comps), func(t *testing.T) {
				objs := renderVariant(t, overlay, comps)
				var ing *networkingv1.Ingress
				var svc *corev1.Service
				for i, v := range decodeAll(t, objs) {
					o := objs[i]
					switch x := v.(type) {
					case *networkingv1.Ingress:
						ing = x
						bad := o
						bad.YAML = []byte(strings.Replace(string(o.YAML), "ingressClassName:", "ingresClassName:", 1))
						if _, err := manifests.DecodeStrict(bad); err == nil {
							t.Error("a misspelt ingressClassName was accepted")
						}
					case *corev1.Service:
						if x.Name == "webapi" {
							svc = x
						}
					}
				}
				if ing == nil || svc == nil {
					t.Fatalf("Ingress %v, Service webapi %v", ing != nil, svc != nil)
				}
				if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "alb" {
					t.Errorf("ingressClassName %v, want alb", ing.Spec.IngressClassName)
				}
				a := ing.Annotations
				if a["alb.ingress.kubernetes.io/target-type"] != "ip" || a["alb.ingress.kubernetes.io/healthcheck-path"] != "/readyz" || a["alb.ingress.kubernetes.io/scheme"] == "" {
					t.Errorf("annotations %v: want target-type ip, healthcheck-path /readyz, a scheme", a)
				}
				for _, r := range ing.Spec.Rules {
					for _, p := range r.HTTP.Paths {
						b := p.Backend.Service
						if b == nil || b.Name != svc.Name || b.Port.Name != svc.Spec.Ports[0].Name {
							t.Errorf("backend %+v, want Service %s port %s", b, svc.Name, svc.Spec.Ports[0].Name)
						}
					}
				}
			})
		}
	}
}

// TestPodIdentityLeavesNoIRSAAnnotation: with components/pod-identity no
// ServiceAccount keeps an IRSA role annotation (the SDK would try web
// identity first and be denied); without it, every ServiceAccount whose pods
// call AWS has one.
func TestPodIdentityLeavesNoIRSAAnnotation(t *testing.T) {
	for _, overlay := range manifests.Overlays {
		for _, comps := range combinations {
			t.Run(variantName(overlay, comps), func(t *testing.T) {
				n := 0
				for _, o := range renderVariant(t, overlay, comps) {
					md, _ := o.Map["metadata"].(map[string]any)
					ann, _ := md["annotations"].(map[string]any)
					if o.Kind == "ServiceAccount" && ann["eks.amazonaws.com/role-arn"] != nil {
						n++
					}
				}
				if podIdentity := slices.Contains(comps, "pod-identity"); podIdentity && n > 0 {
					t.Errorf("%d ServiceAccounts keep eks.amazonaws.com/role-arn with pod-identity", n)
				} else if !podIdentity && n == 0 {
					t.Error("no ServiceAccount has an IRSA role")
				}
			})
		}
	}
}
