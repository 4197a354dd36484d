package podrunner

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// env is a container's resolved environment, in the kubelet's order
// (envFrom first, then env; a later name wins).
type env struct {
	order []string
	vars  map[string]string
}

func (e *env) set(k, v string) {
	if _, ok := e.vars[k]; !ok {
		e.order = append(e.order, k)
	}
	e.vars[k] = v
}

func (e *env) list() []string {
	out := make([]string, 0, len(e.order))
	for _, k := range e.order {
		out = append(out, k+"="+e.vars[k])
	}
	return out
}

// resolveEnv resolves c's envFrom and env as the kubelet would: literal
// values with $(VAR) references to variables defined before them, the
// downward API (metadata.name/namespace/uid/labels/annotations,
// spec.nodeName, spec.serviceAccountName, status.podIP = the pod's loopback
// address, status.hostIP = 127.0.0.1) and keys of ConfigMaps and Secrets
// read from the API.
func (p *pod) resolveEnv(ctx context.Context, c corev1.Container) (*env, error) {
	e := &env{vars: map[string]string{}}
	for _, from := range c.EnvFrom {
		var data map[string]string
		var err error
		switch {
		case from.ConfigMapRef != nil:
			data, err = p.data(ctx, "configMap", from.ConfigMapRef.Name, from.ConfigMapRef.Optional)
		case from.SecretRef != nil:
			data, err = p.data(ctx, "secret", from.SecretRef.Name, from.SecretRef.Optional)
		}
		if err != nil {
			return nil, fmt.Errorf("envFrom %w", err)
		}
		for k, v := range data {
			e.set(from.Prefix+k, v)
		}
	}
	for _, v := range c.Env {
		if v.ValueFrom == nil {
			e.set(v.Name, expand(v.Value, e.vars))
			continue
		}
		val, skip, err := p.valueFrom(ctx, v.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", v.Name, err)
		}
		if !skip {
			e.set(v.Name, val)
		}
	}
	return e, nil
}

func (p *pod) valueFrom(ctx context.Context, src *corev1.EnvVarSource) (val string, skip bool, err error) {
	switch {
	case src.FieldRef != nil:
		v, err := p.field(src.FieldRef.FieldPath)
		return v, false, err
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		return p.key(ctx, "configMap", ref.Name, ref.Key, ref.Optional)
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		return p.key(ctx, "secret", ref.Name, ref.Key, ref.Optional)
	}
	return "", false, fmt.Errorf("only fieldRef, configMapKeyRef and secretKeyRef run here")
}

// data reads the data of the ConfigMap or Secret (kind "configMap" or
// "secret") named name in the pod's namespace, a Secret's values as
// strings. An absent object is no data when optional, as the kubelet
// allows.
func (p *pod) data(ctx context.Context, kind, name string, optional *bool) (map[string]string, error) {
	ns := p.spec.Namespace
	var data map[string]string
	var err error
	if kind == "secret" {
		var s *corev1.Secret
		if s, err = p.r.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			data = make(map[string]string, len(s.Data))
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
	} else {
		var cm *corev1.ConfigMap
		if cm, err = p.r.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			data = cm.Data
		}
	}
	switch {
	case apierrors.IsNotFound(err) && optional != nil && *optional:
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%s %s: %w", kind, name, err)
	}
	return data, nil
}

// key is one key of a ConfigMap's or Secret's data (see data); skip is
// true when it, or its object, is absent and optional.
func (p *pod) key(ctx context.Context, kind, name, key string, optional *bool) (val string, skip bool, err error) {
	data, err := p.data(ctx, kind, name, optional)
	if err != nil {
		return "", false, err
	}
	v, ok := data[key]
	if !ok && (optional == nil || !*optional) {
		return "", false, fmt.Errorf("%s %s has no key %s", kind, name, key)
	}
	return v, !ok, nil
}

// field is the downward API's value of path.
func (p *pod) field(path string) (string, error) {
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return p.spec.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return p.spec.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	switch path {
	case "metadata.name":
		return p.spec.Name, nil
	case "metadata.namespace":
		return p.spec.Namespace, nil
	case "metadata.uid":
		return string(p.spec.UID), nil
	case "spec.nodeName":
		return p.spec.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return p.spec.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return p.ip, nil
	case "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	}
	return "", fmt.Errorf("fieldRef %s does not run here", path)
}

// expand replaces $(NAME) with the value of a variable defined before it
// (unknown names stay as written) and $$ with $, like the kubelet.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '(':
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := vars[name]; ok {
					b.WriteString(v)
					i += 2 + end
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
