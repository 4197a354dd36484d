package server

import "github.com/keda-eks-samples/workloads/pkg/config"

func configReader(m map[string]string) *config.Reader {
	return config.New(func(k string) string { return m[k] })
}
