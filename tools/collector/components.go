// The builder's components.go (cmd/builder v0.156.0) lists each kind twice, a
// factory map and a module map; here every component stands once, beside its
// module, and components() sorts them by kind. Keep the versions equal to
// go.mod's requires (`otelcol components` prints them).

package main

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver"
	otelconftelemetry "go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	awsemfexporter "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/awsemfexporter"
	prometheusexporter "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter"
	prometheusremotewriteexporter "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	debugexporter "go.opentelemetry.io/collector/exporter/debugexporter"

	healthcheckextension "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	sigv4authextension "github.com/open-telemetry/opentelemetry-collector-contrib/extension/sigv4authextension"

	filterprocessor "github.com/open-telemetry/opentelemetry-collector-contrib/processor/filterprocessor"
	transformprocessor "github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	batchprocessor "go.opentelemetry.io/collector/processor/batchprocessor"
	memorylimiterprocessor "go.opentelemetry.io/collector/processor/memorylimiterprocessor"

	otlpreceiver "go.opentelemetry.io/collector/receiver/otlpreceiver"
)

const (
	core    = "go.opentelemetry.io/collector/"
	contrib = "github.com/open-telemetry/opentelemetry-collector-contrib/"
	release = " v0.156.0" // core's v0.x modules and contrib alike
)

// part is one component and the module it comes from.
type part struct {
	factory component.Factory
	module  string
}

// built is every component of this collector, made anew on each call as the
// builder's components() does (otelcol calls it again on every config reload).
func built() []part {
	return []part{
		{healthcheckextension.NewFactory(), contrib + "extension/healthcheckextension" + release},
		{sigv4authextension.NewFactory(), contrib + "extension/sigv4authextension" + release},
		{otlpreceiver.NewFactory(), core + "receiver/otlpreceiver" + release},
		{awsemfexporter.NewFactory(), contrib + "exporter/awsemfexporter" + release},
		{prometheusremotewriteexporter.NewFactory(), contrib + "exporter/prometheusremotewriteexporter" + release},
		{prometheusexporter.NewFactory(), contrib + "exporter/prometheusexporter" + release},
		{debugexporter.NewFactory(), core + "exporter/debugexporter" + release},
		{memorylimiterprocessor.NewFactory(), core + "processor/memorylimiterprocessor" + release},
		{batchprocessor.NewFactory(), core + "processor/batchprocessor" + release},
		{transformprocessor.NewFactory(), contrib + "processor/transformprocessor" + release},
		{filterprocessor.NewFactory(), contrib + "processor/filterprocessor" + release},
	}
}

func components() (otelcol.Factories, error) {
	var (
		extensions []extension.Factory
		receivers  []receiver.Factory
		exporters  []exporter.Factory
		processors []processor.Factory
	)
	f := otelcol.Factories{
		Telemetry:        otelconftelemetry.NewFactory(),
		ExtensionModules: map[component.Type]string{},
		ReceiverModules:  map[component.Type]string{},
		ExporterModules:  map[component.Type]string{},
		ProcessorModules: map[component.Type]string{},
		ConnectorModules: map[component.Type]string{},
	}
	for _, c := range built() {
		switch fac := c.factory.(type) {
		case extension.Factory:
			extensions = add(extensions, f.ExtensionModules, fac, c.module)
		case receiver.Factory:
			receivers = add(receivers, f.ReceiverModules, fac, c.module)
		case exporter.Factory:
			exporters = add(exporters, f.ExporterModules, fac, c.module)
		case processor.Factory:
			processors = add(processors, f.ProcessorModules, fac, c.module)
		default:
			return otelcol.Factories{}, fmt.Errorf("%s: a kind this build does not load", c.module)
		}
	}
	var errs [5]error
	f.Extensions, errs[0] = otelcol.MakeFactoryMap(extensions...)
	f.Receivers, errs[1] = otelcol.MakeFactoryMap(receivers...)
	f.Exporters, errs[2] = otelcol.MakeFactoryMap(exporters...)
	f.Processors, errs[3] = otelcol.MakeFactoryMap(processors...)
	f.Connectors, errs[4] = otelcol.MakeFactoryMap[connector.Factory]()
	return f, errors.Join(errs[:]...)
}

// add appends a factory of one kind and records its module under its type
// and, as the builder's makeModulesMap does, under its deprecated alias.
func add[F component.Factory](fs []F, modules map[component.Type]string, f F, module string) []F {
	modules[f.Type()] = module
	if ap, ok := any(f).(interface{ DeprecatedAlias() component.Type }); ok && ap.DeprecatedAlias().String() != "" {
		modules[ap.DeprecatedAlias()] = module
	}
	return append(fs, f)
}
