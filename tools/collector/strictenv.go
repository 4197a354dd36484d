package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
)

// strictEnvFactory is the upstream env provider with one change: a reference
// ${env:NAME} to a variable that is unset or empty is an error instead of an
// empty string (${env:NAME:-default} still falls back as upstream does). The
// shipped configs take every deployment-specific value from the environment,
// and an empty one is dangerous rather than merely wrong: "${env:MY_POD_IP}:4317"
// would become ":4317", a listener on every interface, and an empty
// CLOUDWATCH_NAMESPACE makes awsemf derive a namespace of its own.
func strictEnvFactory() confmap.ProviderFactory {
	upstream := envprovider.NewFactory()
	return confmap.NewProviderFactory(func(ps confmap.ProviderSettings) confmap.Provider {
		return strictEnv{Provider: upstream.Create(ps)}
	})
}

type strictEnv struct{ confmap.Provider }

func (p strictEnv) Retrieve(ctx context.Context, uri string, watcher confmap.WatcherFunc) (*confmap.Retrieved, error) {
	name, _, hasDefault := strings.Cut(strings.TrimPrefix(uri, p.Scheme()+":"), ":-")
	if !hasDefault && os.Getenv(name) == "" {
		return nil, fmt.Errorf("environment variable %s is not set or empty (the config references ${%s})", name, uri)
	}
	return p.Provider.Retrieve(ctx, uri, watcher)
}
