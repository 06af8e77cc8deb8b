// Command consul is the OCF resource agent ocf:ha-framework:consul.
package main

import (
	"os"

	"github.com/ha-framework/ha-framework/agents/consul/agent"
)

func main() { os.Exit(agent.New().Main()) }
