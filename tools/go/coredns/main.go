// Command coredns is CoreDNS v1.15 with only the plugins the box's cluster DNS uses: the kubernetes
// plugin for cluster.local and the reverse zones, template for every other name (nothing is forwarded),
// and health, readiness, metrics, cache and reload. Fewer plugins keep the build short on a new machine
// and leave out every plugin that talks to a cloud.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/template"
)

func init() {
	// The order in which plugins see a query, as in CoreDNS's plugin.cfg (template before kubernetes,
	// which is why the Corefile gives cluster.local and "." separate server blocks).
	dnsserver.Directives = []string{
		"reload", "ready", "health", "prometheus", "errors", "log",
		"loadbalance", "cache", "template", "kubernetes",
	}
}

func main() {
	coremain.Run()
}
