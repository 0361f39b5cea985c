//go:build tools

// Package tools pins the Go-built tools kovn runs; see tools/go/README.md.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "go.etcd.io/etcd/etcdctl/v3"
)
