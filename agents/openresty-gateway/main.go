// Command openresty-gateway is the OCF resource agent
// ocf:ha-framework:openresty-gateway, and its companion daemon.
package main

import (
	"os"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/gateway"
)

func main() { os.Exit(gateway.Main()) }
