package deploytests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

func TestObjectsDecodeStrictlyIntoTheirGoTypes(t *testing.T) {
	eachVariant(t, func(t *testing.T, _ string, objs []manifests.Object) {
		for _, o := range objs {
			if _, ok := manifests.NewTyped(o.Kind); !ok {
				t.Errorf("%s: no Go type known for kind %s", o, o.Kind)
				continue
			}
			if _, err := manifests.DecodeStrict(o); err != nil {
				t.Errorf("%s: %v", o, err)
			}
		}
	})
}

func TestStrictDecodingCatchesAMisspeltField(t *testing.T) {
	o := manifests.Object{Kind: "ScaledObject", YAML: []byte("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec:\n  scaleTargetRef: {name: x}\n  minReplicas: 1\n  triggers: []\n")}
	if _, err := manifests.DecodeStrict(o); err == nil || !strings.Contains(err.Error(), "minReplicas") {
		t.Fatalf("decodeStrict accepted a misspelt field: %v", err)
	}
}

// KEDA adds its finalizer with a typed Update (controllers/keda
// ensureFinalizer, v2.21.0): it decodes the object into its Go types and
// writes every field back. A field those types spell otherwise (a zero value
// without omitempty, an empty struct) changes the spec, the generation goes
// to 2 and KEDA reconciles again at once. For a ScaledJob that restarts the
// scale loop while it creates Jobs: the e2e video scenario caught 11 Jobs
// for 10 messages. So every ScaledJob ships spelt as KEDA's types write it. (A
// ScaledObject's loop restarts only when the generation KEDA stored changes,
// and it stores the one its own update returned.)
func TestKEDAWritesBackTheScaledJobAsShipped(t *testing.T) {
	eachOverlay(t, func(t *testing.T, overlay string, objs []manifests.Object) {
		for _, o := range objs {
			if o.Kind != "ScaledJob" {
				continue
			}
			if diff := writeBackDiff(t, o); len(diff) > 0 {
				t.Errorf("%s: KEDA's typed update would change the spec (new generation, a second reconcile):\n  %s",
					o, fmt.Sprint(diff))
			}
			// The counterexample: the ScaledJob as shipped before, without
			// rollout and the condition's status.
			var before map[string]any
			if err := yaml.Unmarshal(o.YAML, &before); err != nil {
				t.Fatal(err)
			}
			old := before["spec"].(map[string]any)
			delete(old, "rollout")
			rules := old["jobTargetRef"].(map[string]any)["podFailurePolicy"].(map[string]any)["rules"].([]any)
			for _, r := range rules {
				conds, _ := r.(map[string]any)["onPodConditions"].([]any)
				for _, c := range conds {
					delete(c.(map[string]any), "status")
				}
			}
			b, err := yaml.Marshal(before)
			if err != nil {
				t.Fatal(err)
			}
			o.YAML, o.Map = b, before
			if diff := writeBackDiff(t, o); len(diff) != 2 {
				t.Errorf("%s as shipped before: KEDA's write differs in %v, want rollout and the condition's status", o, diff)
			}
		}
	})
}

// writeBackDiff lists where the spec KEDA's Go types write back differs
// from o's.
func writeBackDiff(t *testing.T, o manifests.Object) []string {
	t.Helper()
	v, err := manifests.DecodeStrict(o)
	if err != nil {
		t.Fatal(err)
	}
	var shipped, written map[string]any
	if err := roundJSON(o.Map["spec"], &shipped); err != nil {
		t.Fatal(err)
	}
	if err := roundJSON(reflect.ValueOf(v).Elem().FieldByName("Spec").Interface(), &written); err != nil {
		t.Fatal(err)
	}
	return jsonDiff("spec", shipped, written)
}

// roundJSON decodes v's JSON encoding into out, so YAML-decoded and
// Go-typed values compare alike.
func roundJSON(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// jsonDiff lists the paths at which two decoded JSON values differ, with
// both sides.
func jsonDiff(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		var keys []string
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		var out []string
		for _, k := range keys {
			out = append(out, jsonDiff(path+"."+k, am[k], bm[k])...)
		}
		return out
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok && len(as) == len(bs) {
		var out []string
		for i := range as {
			out = append(out, jsonDiff(fmt.Sprintf("%s[%d]", path, i), as[i], bs[i])...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	return []string{fmt.Sprintf("%s: shipped %v, KEDA writes %v", path, show(a), show(b))}
}

// show prints a JSON value, absent ones as such.
func show(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// kedaModuleDir is where the Go command keeps the KEDA module this test
// module requires; its config/crd/bases are the CRDs KEDA v2.21 installs.
var kedaModuleDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kedacore/keda/v2").Output()
	return strings.TrimSpace(string(out)), err
})

// crdValidators builds, from KEDA's CRD files, Kubernetes' own validator of
// custom resources for each kind (what the API server runs on create).
func crdValidators(t *testing.T) map[string]apiservervalidation.SchemaValidator {
	t.Helper()
	dir, err := kedaModuleDir()
	if err != nil || dir == "" {
		t.Fatalf("locating the KEDA module: %v", err)
	}
	validators := map[string]apiservervalidation.SchemaValidator{}
	for _, f := range []string{"keda.sh_scaledobjects.yaml", "keda.sh_scaledjobs.yaml", "keda.sh_triggerauthentications.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, "config", "crd", "bases", f))
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(b, &crd); err != nil {
			t.Fatal(err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Name != "v1alpha1" {
				continue
			}
			var internal apiextensions.JSONSchemaProps
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
				t.Fatal(err)
			}
			val, _, err := apiservervalidation.NewSchemaValidator(&internal)
			if err != nil {
				t.Fatal(err)
			}
			validators[crd.Spec.Names.Kind] = val
		}
	}
	return validators
}

func TestKedaObjectsMatchTheCRDSchemas(t *testing.T) {
	validators := crdValidators(t)
	if len(validators) != 3 {
		t.Fatalf("validators for %d kinds, want 3", len(validators))
	}
	seen := map[string]int{}
	eachVariant(t, func(t *testing.T, _ string, objs []manifests.Object) {
		for _, o := range objs {
			val, ok := validators[o.Kind]
			if !ok {
				continue
			}
			seen[o.Kind]++
			if errs := apiservervalidation.ValidateCustomResource(field.NewPath(""), o.Map, val); len(errs) > 0 {
				t.Errorf("%s: %v", o, errs.ToAggregate())
			}
		}
	})
	for kind := range validators {
		if seen[kind] == 0 {
			t.Errorf("no %s rendered by any overlay", kind)
		}
	}
	// The validator is not a no-op: a ScaledJob with an unknown strategy fails.
	bad := map[string]any{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": map[string]any{"name": "x"},
		"spec": map[string]any{"jobTargetRef": map[string]any{"template": map[string]any{}}, "triggers": []any{},
			"pollingInterval": "often"}}
	if errs := apiservervalidation.ValidateCustomResource(field.NewPath(""), bad, validators["ScaledJob"]); len(errs) == 0 {
		t.Error("the ScaledJob schema accepted pollingInterval: often")
	}
}

// TestEveryScaledObjectStatesItsHPABehavior: without spec.advanced...behavior
// the HPA KEDA creates takes the controller's legacy path (scale-up held at
// the highest recommendation of the last 300 s), which is not what the
// trigger arithmetic assumes.
func TestEveryScaledObjectStatesItsHPABehavior(t *testing.T) {
	n := 0
	eachVariant(t, func(t *testing.T, _ string, objs []manifests.Object) {
		eachScaledObject(t, objs, func(o manifests.Object, so *kedav1alpha1.ScaledObject) {
			n++
			adv := so.Spec.Advanced
			if adv == nil || adv.HorizontalPodAutoscalerConfig == nil || adv.HorizontalPodAutoscalerConfig.Behavior == nil {
				t.Errorf("%s states no HPA behavior", o)
				return
			}
			b := adv.HorizontalPodAutoscalerConfig.Behavior
			if b.ScaleUp == nil || b.ScaleDown == nil || len(b.ScaleUp.Policies) == 0 || len(b.ScaleDown.Policies) == 0 ||
				b.ScaleUp.StabilizationWindowSeconds == nil || b.ScaleDown.StabilizationWindowSeconds == nil {
				t.Errorf("%s: behavior %+v leaves part of scale-up or scale-down to the controller's defaults", o, b)
			}
		})
	})
	if n == 0 {
		t.Fatal("no ScaledObject rendered")
	}
}

// TestNoCooldownWithoutScaleToZero: KEDA applies cooldownPeriod only when
// scaling to zero; on a ScaledObject that never goes below one replica it
// would promise a scale-down delay it does not give (the HPA behavior's
// stabilization window does that).
func TestNoCooldownWithoutScaleToZero(t *testing.T) {
	eachOverlay(t, func(t *testing.T, _ string, objs []manifests.Object) {
		eachScaledObject(t, objs, func(o manifests.Object, so *kedav1alpha1.ScaledObject) {
			if so.Spec.CooldownPeriod != nil && ptr.Deref(so.Spec.MinReplicaCount, 0) > 0 {
				t.Errorf("%s: cooldownPeriod %d with minReplicaCount %d does nothing", o, *so.Spec.CooldownPeriod, *so.Spec.MinReplicaCount)
			}
		})
	})
}

// eachScaledObject calls fn with every ScaledObject in objs, decoded
// strictly.
func eachScaledObject(t *testing.T, objs []manifests.Object, fn func(o manifests.Object, so *kedav1alpha1.ScaledObject)) {
	t.Helper()
	for _, o := range objs {
		if o.Kind != "ScaledObject" {
			continue
		}
		v, err := manifests.DecodeStrict(o)
		if err != nil {
			t.Fatal(err)
		}
		fn(o, v.(*kedav1alpha1.ScaledObject))
	}
}
