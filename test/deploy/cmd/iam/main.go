// Command iam writes the IAM documents of deploy/iam, filled with the
// parameter file's values, to a directory (make iam).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/keda-eks-samples/workloads/test/deploy/iamdoc"
)

func main() {
	params := flag.String("params", "deploy/kustomize/params/params.env", "the parameter file")
	dir := flag.String("iam", "deploy/iam", "the IAM templates")
	out := flag.String("out", "bin/iam", "where to write the documents")
	flag.Parse()
	if err := run(*params, *dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "iam:", err)
		os.Exit(1)
	}
}

func run(paramsFile, dir, out string) error {
	params, _, err := iamdoc.ReadParams(paramsFile)
	if err != nil {
		return err
	}
	docs, err := iamdoc.Render(dir, params)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(docs))
	for n := range docs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(out, n), docs[n], 0o644); err != nil {
			return err
		}
		fmt.Println(filepath.Join(out, n))
	}
	return nil
}
