//go:build tools

// Package tools pins the Go-built tools kovn runs; see tools/go/README.md.
package tools

import (
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
