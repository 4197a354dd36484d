package podrunner

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// ConfigMaps and Secrets reach the environment as the kubelet puts them
// there: envFrom with its prefix, single keys by name, an absent optional
// object or key left out, an absent required one an error naming it.
func TestResolveEnvReadsConfigMapsAndSecrets(t *testing.T) {
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: "ns", Name: name} }
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: meta("cm"), Data: map[string]string{"A": "a"}},
		&corev1.Secret{ObjectMeta: meta("sec"), Data: map[string][]byte{"B": []byte("b")}},
	)
	yes := true
	p := newPod(&Runner{client: client}, &corev1.Pod{ObjectMeta: meta("pod")}, "127.0.0.2", nil)
	cmKey := func(name, key string, optional *bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: optional}}
	}
	secretKey := func(name, key string, optional *bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: optional}}
	}
	c := corev1.Container{
		EnvFrom: []corev1.EnvFromSource{
			{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
			{Prefix: "S_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Optional: &yes}},
		},
		Env: []corev1.EnvVar{
			{Name: "ONE", ValueFrom: cmKey("cm", "A", nil)},
			{Name: "TWO", ValueFrom: secretKey("sec", "B", nil)},
			{Name: "NO_KEY", ValueFrom: cmKey("cm", "missing", &yes)},
			{Name: "NO_SECRET", ValueFrom: secretKey("gone", "B", &yes)},
		},
	}
	e, err := p.resolveEnv(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(e.list(), " "), "CM_A=a S_B=b ONE=a TWO=b"; got != want {
		t.Errorf("env %q, want %q", got, want)
	}

	for _, bad := range []struct {
		src  *corev1.EnvVarSource
		want string
	}{
		{cmKey("cm", "missing", nil), "env X: configMap cm has no key missing"},
		{secretKey("gone", "B", nil), `env X: secret gone: secrets "gone" not found`},
	} {
		_, err := p.resolveEnv(t.Context(), corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: bad.src}}})
		if err == nil || err.Error() != bad.want {
			t.Errorf("got error %v, want %q", err, bad.want)
		}
	}
	from := corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}}}}}
	if _, err := p.resolveEnv(t.Context(), from); err == nil || err.Error() != `envFrom configMap gone: configmaps "gone" not found` {
		t.Errorf("envFrom of an absent configMap: %v", err)
	}
}
