package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

const (
	apiServiceName = "v1beta1.external.metrics.k8s.io"
	fieldManager   = "localcluster"
)

var (
	crdGVR        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	namespaceGVR  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	serviceGVR    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
)

// startKEDA installs KEDA's CRDs, starts the operator and our adapter as
// processes (admin kubeconfig, every listener on 127.0.0.1, one CA for their
// mTLS), registers the adapter as the external metrics API and waits until
// the aggregator reports it Available.
func (c *Cluster) startKEDA(ctx context.Context) error {
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	if err := c.applyCRDs(ctx, dyn); err != nil {
		return err
	}
	if err := apply(ctx, dyn, namespaceGVR, "", map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": KEDANamespace},
	}); err != nil {
		return err
	}

	certDir := filepath.Join(c.opts.WorkDir, "keda-certs")
	// The aggregator checks the adapter's certificate for the Service's DNS
	// name; the adapter dials the operator at 127.0.0.1.
	caPEM, err := writeCerts(certDir, "localhost", adapterService+"."+KEDANamespace+".svc", "keda-operator."+KEDANamespace+".svc")
	if err != nil {
		return fmt.Errorf("keda certificates: %w", err)
	}
	// --ca-dir: the CAs scalers trust; every file in it must be a certificate.
	caDir := filepath.Join(c.opts.WorkDir, "keda-ca")
	if err := os.MkdirAll(caDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(caDir, "ca.crt"), caPEM, 0o600); err != nil {
		return err
	}
	ports, err := localproc.FreePorts(5)
	if err != nil {
		return err
	}
	opMetrics, opProbe, opGRPC, adSecure, adMetrics := ports[0], ports[1], ports[2], ports[3], ports[4]
	loop := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	env := []string{
		"KUBECONFIG=" + c.Kubeconfig,
		"WATCH_NAMESPACE=", // every namespace
		"POD_NAMESPACE=" + KEDANamespace,
		"KEDA_CLUSTER_OBJECT_NAMESPACE=" + KEDANamespace,
	}
	logArgs := []string{"--zap-log-level=info", "--zap-encoder=console", "--zap-time-encoding=rfc3339"}

	operator, err := c.start("keda-operator", c.opts.Bins.KEDAOperator, append([]string{
		"--leader-elect=false",
		"--metrics-bind-address=" + loop(opMetrics),
		"--health-probe-bind-address=" + loop(opProbe),
		"--metrics-service-bind-address=" + loop(opGRPC),
		// No Secret-backed certificates, no patching of webhooks and
		// APIServices: this package writes the certificates and the APIService.
		"--enable-cert-rotation=false",
		"--enable-webhook-patching=false",
		"--enable-apiservice-patching=false",
		"--cert-dir=" + certDir,
		"--ca-dir=" + caDir,
	}, logArgs...), env)
	if err != nil {
		return err
	}
	operator.ready = func(ctx context.Context, p *process) error {
		return waitURL(ctx, p, nil, "http://"+loop(opProbe)+"/readyz", 60*time.Second)
	}
	if err := operator.ready(ctx, operator); err != nil {
		return err
	}

	// No kube-proxy and no cluster DNS: the aggregator resolves an
	// ExternalName Service to <externalName>:<APIService port>.
	if err := apply(ctx, dyn, serviceGVR, KEDANamespace, map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": adapterService, "namespace": KEDANamespace},
		"spec": map[string]any{
			"type": "ExternalName", "externalName": "localhost",
			"ports": []any{map[string]any{"name": "https", "port": int64(adSecure), "protocol": "TCP"}},
		},
	}); err != nil {
		return err
	}
	if err := apply(ctx, dyn, apiServiceGVR, "", map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": apiServiceName},
		"spec": map[string]any{
			"group": "external.metrics.k8s.io", "version": "v1beta1",
			"groupPriorityMinimum": int64(100), "versionPriority": int64(100),
			"caBundle": base64.StdEncoding.EncodeToString(caPEM),
			"service":  map[string]any{"name": adapterService, "namespace": KEDANamespace, "port": int64(adSecure)},
		},
	}); err != nil {
		return err
	}

	adapter, err := c.start("keda-adapter", c.opts.Bins.KEDAAdapter, append([]string{
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(adSecure),
		"--cert-dir=" + certDir,
		"--tls-cert-file=" + filepath.Join(certDir, "tls.crt"),
		"--tls-private-key-file=" + filepath.Join(certDir, "tls.key"),
		"--lister-kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--metrics-service-address=" + loop(opGRPC),
		"--metrics-bind-address=" + loop(adMetrics),
	}, logArgs...), env)
	if err != nil {
		return err
	}
	// The adapter's /readyz is one of the paths its delegated authorization
	// always allows; its certificate names localhost.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	adapterClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}}
	adapter.ready = func(ctx context.Context, p *process) error {
		return waitURL(ctx, p, adapterClient, "https://"+loop(adSecure)+"/readyz", 60*time.Second)
	}

	return localproc.PollContext(ctx, 200*time.Millisecond, 90*time.Second, func() (bool, error) {
		for _, p := range []*process{operator, adapter} {
			if p.Exited() {
				return false, fmt.Errorf("%s exited (%v); log:\n%s", p.name, p.Err(), tail(p.log))
			}
		}
		as, err := dyn.Resource(apiServiceGVR).Get(ctx, apiServiceName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(as.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Available" {
				return m["status"] == "True", nil
			}
		}
		return false, nil
	})
}

// Kill sends SIGKILL to one of KEDA's processes ("keda-operator" or
// "keda-adapter"), as an OOM kill or a lost node ends a pod, and returns once
// it has exited.
func (c *Cluster) Kill(name string) error {
	p, err := c.process(name)
	if err != nil {
		return err
	}
	if err := syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	<-p.Done()
	c.opts.Logf("localcluster: killed %s (pid %d, SIGKILL)", name, p.Cmd.Process.Pid)
	return nil
}

// Restart starts a KEDA process that Kill ended, with the same flags, as
// its Deployment would start a new pod; its log goes on in <name>.<n>.log.
// It returns once the process is ready (the operator's /readyz, the
// adapter's).
func (c *Cluster) Restart(ctx context.Context, name string) error {
	old, err := c.process(name)
	if err != nil {
		return err
	}
	if !old.Exited() {
		return fmt.Errorf("restart %s: still running (pid %d)", name, old.Cmd.Process.Pid)
	}
	gen := old.generation + 1
	p, err := startProcess(name, old.bin, old.args, old.env, filepath.Join(c.logDir, fmt.Sprintf("%s.%d.log", name, gen)))
	if err != nil {
		return err
	}
	p.generation, p.ready = gen, old.ready
	for i, q := range c.procs {
		if q == old {
			c.procs[i] = p
		}
	}
	c.opts.Logf("localcluster: restarted %s (pid %d)", name, p.Cmd.Process.Pid)
	if p.ready == nil {
		return nil
	}
	return p.ready(ctx, p) // same ports as before
}

// process returns the running (or last) process named name.
func (c *Cluster) process(name string) (*process, error) {
	for _, p := range c.procs {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("localcluster: no process %q", name)
}

// start starts one of KEDA's processes, its log in the cluster's log dir.
func (c *Cluster) start(name, bin string, args, env []string) (*process, error) {
	p, err := startProcess(name, bin, args, env, filepath.Join(c.logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	c.opts.Logf("localcluster: started %s (pid %d)", name, p.Cmd.Process.Pid)
	return p, nil
}

// waitURL polls url through client (nil: plain HTTP) until it answers 200
// (localproc.WaitOK), failing early if p exits; the error carries the tail
// of p's log.
func waitURL(ctx context.Context, p *process, client *http.Client, url string, timeout time.Duration) error {
	if err := localproc.WaitOK(ctx, client, url, timeout, p.Done()); err != nil {
		if p.Exited() {
			err = fmt.Errorf("%w (exit: %v)", err, p.Err())
		}
		return fmt.Errorf("%s %s: %w; log:\n%s", p.name, url, err, tail(p.log))
	}
	return nil
}

// applyCRDs applies KEDA's CRDs server-side (the ScaledJob CRD is too large
// for client-side apply's last-applied annotation) and waits until each is
// Established.
func (c *Cluster) applyCRDs(ctx context.Context, dyn dynamic.Interface) error {
	files, err := filepath.Glob(filepath.Join(c.opts.CRDDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no KEDA CRDs in %s (%v)", c.opts.CRDDir, err)
	}
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var obj map[string]any
		if err := yaml.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := apply(ctx, dyn, crdGVR, "", obj); err != nil {
			return err
		}
		names = append(names, (&unstructured.Unstructured{Object: obj}).GetName())
	}
	return localproc.PollContext(ctx, 200*time.Millisecond, SetupTimeout, func() (bool, error) {
		for _, name := range names {
			crd, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			established := false
			for _, cond := range conds {
				m, _ := cond.(map[string]any)
				established = established || (m["type"] == "Established" && m["status"] == "True")
			}
			if !established {
				return false, nil
			}
		}
		return true, nil
	})
}

// apply applies obj server-side as this package's field manager.
func apply(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, namespace string, obj map[string]any) error {
	u := &unstructured.Unstructured{Object: obj}
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if namespace != "" {
		ri = dyn.Resource(gvr).Namespace(namespace)
	}
	_, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}
