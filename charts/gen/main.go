// Command gen writes the chart's generated templates (the CRDs and the manager's RBAC
// rules) from controller-gen's output under config/. Run it from the repository root:
// `go run ./charts/gen` (or `make helm-crds`).
package main

import (
	"fmt"
	"os"

	"github.com/kafkasub/kafkasub/charts"
)

func main() {
	changed, err := charts.Write(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "charts/gen:", err)
		os.Exit(1)
	}
	for _, p := range changed {
		fmt.Println("updated", p)
	}
}
