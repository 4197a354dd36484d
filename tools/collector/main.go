// Command otelcol is this repository's OpenTelemetry Collector: upstream
// components only, put together the way the OpenTelemetry Collector Builder
// (go.opentelemetry.io/collector/cmd/builder v0.156.0) would. main.go is
// written by hand in the shape of the builder's main.go.tmpl and
// main_others.go.tmpl; components.go holds the same lists as its
// components.go.tmpl, one line a component. The additions are the version
// variable and the strict env provider (strictenv.go).
package main

import (
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	envprovider "go.opentelemetry.io/collector/confmap/provider/envprovider"
	fileprovider "go.opentelemetry.io/collector/confmap/provider/fileprovider"
	yamlprovider "go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// version is stamped at build time: go build -ldflags='-X main.version=v1.2.3'.
var version = "dev"

func main() {
	info := component.BuildInfo{
		Command:     "otelcol",
		Description: "OpenTelemetry Collector of the KEDA-on-EKS workload samples (github.com/keda-eks-samples/workloads)",
		Version:     version,
	}

	// Only the env, file and yaml providers: configs come from files
	// (ConfigMaps), every deployment-specific value from ${env:VAR}, and the
	// yaml provider backs --set. No http(s) provider: nothing is fetched.
	// The env provider is wrapped so an unset variable fails (strictenv.go);
	// that is this file's one departure from the builder's output.
	set := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					strictEnvFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
			},
		},
		ProviderModules: map[string]string{
			envprovider.NewFactory().Create(confmap.ProviderSettings{}).Scheme():  "go.opentelemetry.io/collector/confmap/provider/envprovider v1.62.0",
			fileprovider.NewFactory().Create(confmap.ProviderSettings{}).Scheme(): "go.opentelemetry.io/collector/confmap/provider/fileprovider v1.62.0",
			yamlprovider.NewFactory().Create(confmap.ProviderSettings{}).Scheme(): "go.opentelemetry.io/collector/confmap/provider/yamlprovider v1.62.0",
		},
		ConverterModules: []string{},
	}

	// main_others.go's run, inlined: the images are Linux only, so there is
	// no main_windows.go service wrapper.
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		// cobra has already printed the error.
		os.Exit(1)
	}
}
