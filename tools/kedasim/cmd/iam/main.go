// Command iam writes the IAM documents of deploy/iam, filled with the
// parameter file's values, to a directory (make iam), and with -eksctl-out
// the eksctl ClusterConfig with each Pod Identity association's permission
// policy from the same documents (make cluster-config).
package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/keda-eks-samples/workloads/tools/kedasim/iamgen"
)

func main() {
	params := flag.String("params", "deploy/kustomize/params/params.env", "the parameter file")
	dir := flag.String("iam", "deploy/iam", "the IAM templates")
	out := flag.String("out", "bin/iam", "where to write the documents")
	eksctlTmpl := flag.String("eksctl", "deploy/eksctl/cluster.yaml", "the eksctl ClusterConfig template")
	eksctlOut := flag.String("eksctl-out", "", "where to write the eksctl ClusterConfig (none when empty)")
	flag.Parse()
	err := run(*params, *dir, *out)
	if err == nil && *eksctlOut != "" {
		err = clusterConfig(*params, *dir, *eksctlTmpl, *eksctlOut)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "iam:", err)
		os.Exit(1)
	}
}

func run(paramsFile, dir, out string) error {
	params, _, err := iamgen.ReadParams(paramsFile)
	if err != nil {
		return err
	}
	docs, err := iamgen.Render(dir, params)
	if err != nil {
		return err
	}
	table, err := iamgen.RolesTable(params)
	if err != nil {
		return err
	}
	docs["roles.txt"] = []byte(table)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, n := range slices.Sorted(maps.Keys(docs)) {
		if err := os.WriteFile(filepath.Join(out, n), docs[n], 0o644); err != nil {
			return err
		}
		fmt.Println(filepath.Join(out, n))
	}
	return nil
}

func clusterConfig(paramsFile, dir, tmpl, out string) error {
	params, _, err := iamgen.ReadParams(paramsFile)
	if err != nil {
		return err
	}
	cfg, err := iamgen.ClusterConfig(tmpl, dir, params)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, cfg, 0o644); err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}
