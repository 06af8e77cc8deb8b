// Command example is the OCF resource agent ocf:ha-framework:example.
package main

import (
	"os"

	"github.com/ha-framework/ha-framework/agents/example/agent"
)

func main() { os.Exit(agent.New().Main()) }
