package deploytests

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

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
