// Command haproxy-dynamic is the OCF resource agent
// ocf:ha-framework:haproxy-dynamic, and its watcher daemon.
package main

import (
	"os"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxydynamic"
)

func main() { os.Exit(haproxydynamic.Main()) }
