// Command keda-adapter is KEDA's metrics adapter (the server behind the
// external.metrics.k8s.io APIService) for the local control plane of the e2e
// tests (localcluster). It is not shipped: clusters run KEDA's image.
//
// It exists because KEDA's own cmd/adapter (v2.21.0) serves its Prometheus
// /metrics on ":<port>", every interface, with no flag to choose the address,
// and the local control plane listens on 127.0.0.1 only (a `go build -overlay`
// of the upstream main is refused for module-cache files). Everything else is
// KEDA's code, wired as upstream's main wires it: the provider
// (pkg/provider), the mTLS gRPC client to the operator's metrics service
// (pkg/metricsservice) and custom-metrics-apiserver's serving, whose
// --bind-address the caller sets to 127.0.0.1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/metricsservice"
	kedaprovider "github.com/kedacore/keda/v2/pkg/provider"
	kedautil "github.com/kedacore/keda/v2/pkg/util"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

var log = ctrl.Log.WithName("keda_metrics_adapter")

func main() {
	if err := run(ctrl.SetupSignalHandler(), os.Args); err != nil {
		log.Error(err, "unable to run external metrics adapter")
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	adapter := &basecmd.AdapterBase{Name: "keda-adapter"}
	fs := adapter.Flags()
	metricsAddr := fs.String("metrics-bind-address", "127.0.0.1:8080", "host:port of the Prometheus /metrics listener (upstream: :8080, not settable)")
	serviceAddr := fs.String("metrics-service-address", "127.0.0.1:9666", "host:port of the KEDA operator's gRPC metrics service")
	authority := fs.String("metrics-service-grpc-authority", "", "host authority for the metrics service, if not the address's host")
	qps := fs.Float32("kube-api-qps", 20, "QPS of the adapter's controller-runtime client")
	burst := fs.Int("kube-api-burst", 30, "burst of the adapter's controller-runtime client")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	klog.InitFlags(nil)
	fs.AddGoFlagSet(flag.CommandLine)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	disco, err := adapter.DiscoveryClient()
	if err != nil {
		return err
	}
	version, err := disco.ServerVersion()
	if err != nil {
		return fmt.Errorf("kubernetes version: %w", err)
	}
	kedautil.PrintWelcome(log, kedautil.NewK8sVersion(version), "metrics server")

	clientMetrics := grpcprom.NewClientMetrics(
		grpcprom.WithClientCounterOptions(func(o *prometheus.CounterOpts) { o.Namespace = "keda_internal_metricsservice" }),
	)
	legacyregistry.Registerer().MustRegister(clientMetrics)

	p, err := newProvider(ctx, adapter, *serviceAddr, *authority, *qps, *burst, clientMetrics)
	if err != nil {
		return err
	}
	adapter.WithExternalMetrics(p)

	ln, err := net.Listen("tcp", *metricsAddr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", legacyregistry.Handler())
	srv := &http.Server{Handler: mux}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "metrics server")
		}
	}()
	defer srv.Close()

	log.Info("starting adapter", "metrics", ln.Addr().String(), "metricsService", *serviceAddr)
	return adapter.Run(ctx)
}

// newProvider is upstream's makeProvider: a controller-runtime manager reading
// ScaledObjects and a gRPC client to the operator, which computes the metrics.
func newProvider(ctx context.Context, adapter *basecmd.AdapterBase, serviceAddr, authority string, qps float32, burst int, clientMetrics *grpcprom.ClientMetrics) (provider.ExternalMetricsProvider, error) {
	s := scheme.Scheme
	if err := appsv1.SchemeBuilder.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := kedav1alpha1.SchemeBuilder.AddToScheme(s); err != nil {
		return nil, err
	}
	namespaces, err := kedautil.GetWatchNamespaces()
	if err != nil {
		return nil, fmt.Errorf("watch namespaces: %w", err)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst, cfg.DisableCompression = qps, burst, true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Metrics: server.Options{BindAddress: "0"}, // served above, with the apiserver's metrics
		Scheme:  s,
		Cache: ctrlcache.Options{
			DefaultNamespaces: namespaces,
			DefaultTransform:  kedautil.CacheObjectTransform,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	// The operator's mTLS: ca.crt, tls.crt and tls.key in the serving cert directory.
	grpcClient, err := metricsservice.NewGrpcClient(ctx, serviceAddr, adapter.SecureServing.ServerCert.CertDirectory, authority, "", clientMetrics, false)
	if err != nil {
		return nil, fmt.Errorf("metrics service client %s: %w", serviceAddr, err)
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			log.Error(err, "controller-runtime manager")
			os.Exit(1)
		}
	}()
	return kedaprovider.NewProvider(ctx, log, mgr.GetClient(), *grpcClient), nil
}
