//go:build tools

// Package tools pins the Go-built tools kovn runs; see tools/go/README.md.
package tools

import (
	_ "github.com/temporalio/cli/cmd/temporal"
)
