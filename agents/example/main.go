// Command example is the OCF resource agent ocf:ha-framework:example.
package main

import (
	"os"

	"github.com/ha-framework/ha-framework/agents/example/exampleagent"
)

func main() { os.Exit(exampleagent.New().Main()) }
