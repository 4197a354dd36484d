// Package manifests renders the deploy tree's kustomize overlays as users
// render them and decodes the objects into Kubernetes' and KEDA v2.21's own
// Go types, strictly: the triggers with their TriggerAuthentication, and a
// Deployment's env. What the deploy tests check and what `make preview`
// (cmd/preview) reads; kedascaler builds KEDA's scalers from its Triggers.
package manifests

import (
	"errors"
	"fmt"
	"path/filepath"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Overlays are the six variants users deploy (deploy/kustomize/overlays).
var Overlays = []string{"sidecar", "gateway", "cloudwatch-direct", "amp", "sqs-worker", "video-encoder"}

// Object is one rendered Kubernetes object.
type Object struct {
	Kind, Name, Namespace string
	YAML                  []byte
	Map                   map[string]any
}

func (o Object) String() string { return o.Kind + "/" + o.Name }

// Render builds a kustomization directory with the kustomize API, with the
// options `kustomize build` and `kubectl kustomize` use by default (files
// only from inside each kustomization's root).
func Render(dir string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return Objects(m)
}

// Objects is every object of a kustomize build, in its order.
func Objects(m resmap.ResMap) ([]Object, error) {
	var objs []Object
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		var mp map[string]any
		if err := yaml.Unmarshal(b, &mp); err != nil {
			return nil, err
		}
		objs = append(objs, Object{Kind: r.GetKind(), Name: r.GetName(), Namespace: r.GetNamespace(), YAML: b, Map: mp})
	}
	return objs, nil
}

// RenderOverlay renders deploy/kustomize/overlays/<name> of the repository
// at root.
func RenderOverlay(root, name string) ([]Object, error) {
	return Render(filepath.Join(root, "deploy", "kustomize", "overlays", name))
}

// NewTyped returns a new value of the Go type of kind, for every kind the
// overlays render.
func NewTyped(kind string) (any, bool) {
	switch kind {
	case "Namespace":
		return &corev1.Namespace{}, true
	case "ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "Service":
		return &corev1.Service{}, true
	case "ConfigMap":
		return &corev1.ConfigMap{}, true
	case "Deployment":
		return &appsv1.Deployment{}, true
	case "Job":
		return &batchv1.Job{}, true
	case "PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "Ingress":
		return &networkingv1.Ingress{}, true
	case "ScaledObject":
		return &kedav1alpha1.ScaledObject{}, true
	case "ScaledJob":
		return &kedav1alpha1.ScaledJob{}, true
	case "TriggerAuthentication":
		return &kedav1alpha1.TriggerAuthentication{}, true
	}
	return nil, false
}

// DecodeStrict decodes o into its Go type; an unknown or misspelt field is
// an error.
func DecodeStrict(o Object) (any, error) {
	v, ok := NewTyped(o.Kind)
	if !ok {
		return nil, fmt.Errorf("no Go type for kind %s", o.Kind)
	}
	return v, yaml.UnmarshalStrict(o.YAML, v)
}

// Trigger is one rendered KEDA trigger with what its owner says about it.
type Trigger struct {
	Owner           string // ScaledObject/webapi
	Kind            string // ScaledObject or ScaledJob
	Name            string
	Min, Max        int32
	PollingInterval int32 // seconds, KEDA's default 30 when unset
	Spec            kedav1alpha1.ScaleTriggers
	Auth            *kedav1alpha1.TriggerAuthentication
	ScaledJob       *kedav1alpha1.ScaledJob // the owner, for a ScaledJob's trigger
}

// Triggers returns every trigger of every ScaledObject and ScaledJob in
// objs, with the TriggerAuthentication each one references. An unresolved
// reference is reported in err, and the trigger still returned.
func Triggers(objs []Object) ([]Trigger, error) {
	auths := map[string]*kedav1alpha1.TriggerAuthentication{}
	for _, o := range objs {
		if o.Kind == "TriggerAuthentication" {
			v, err := DecodeStrict(o)
			if err != nil {
				return nil, err
			}
			auths[o.Name] = v.(*kedav1alpha1.TriggerAuthentication)
		}
	}
	var out []Trigger
	var errs []error
	add := func(o Object, min, max, poll int32, sj *kedav1alpha1.ScaledJob, ts []kedav1alpha1.ScaleTriggers) {
		for _, tr := range ts {
			tg := Trigger{Owner: o.String(), Kind: o.Kind, Name: o.Name, Min: min, Max: max, PollingInterval: poll, Spec: tr, ScaledJob: sj}
			if ref := tr.AuthenticationRef; ref != nil {
				if tg.Auth = auths[ref.Name]; tg.Auth == nil {
					errs = append(errs, fmt.Errorf("%s: TriggerAuthentication %q is not in the overlay", o, ref.Name))
				}
			}
			out = append(out, tg)
		}
	}
	for _, o := range objs {
		v, err := DecodeStrict(o)
		if err != nil {
			continue
		}
		// Unset fields take KEDA's defaults: min 0, max 100, polling 30 s.
		switch w := v.(type) {
		case *kedav1alpha1.ScaledObject:
			add(o, ptr.Deref(w.Spec.MinReplicaCount, 0), ptr.Deref(w.Spec.MaxReplicaCount, 100), ptr.Deref(w.Spec.PollingInterval, 30), nil, w.Spec.Triggers)
		case *kedav1alpha1.ScaledJob:
			add(o, ptr.Deref(w.Spec.MinReplicaCount, 0), ptr.Deref(w.Spec.MaxReplicaCount, 100), ptr.Deref(w.Spec.PollingInterval, 30), w, w.Spec.Triggers)
		}
	}
	return out, errors.Join(errs...)
}

// DeploymentEnv is the value of env var name in the container named after
// the Deployment deployment, as rendered, and whether it is set.
func DeploymentEnv(objs []Object, deployment, name string) (string, bool) {
	for _, o := range objs {
		if o.Kind != "Deployment" || o.Name != deployment {
			continue
		}
		spec, _ := o.Map["spec"].(map[string]any)
		tmpl, _ := spec["template"].(map[string]any)
		pod, _ := tmpl["spec"].(map[string]any)
		containers, _ := pod["containers"].([]any)
		for _, c := range containers {
			cm, _ := c.(map[string]any)
			if cm["name"] != deployment {
				continue
			}
			env, _ := cm["env"].([]any)
			for _, e := range env {
				em, _ := e.(map[string]any)
				if v, ok := em["value"].(string); ok && em["name"] == name {
					return v, true
				}
			}
		}
	}
	return "", false
}
