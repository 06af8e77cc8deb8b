// Command consul is the OCF resource agent ocf:ha-framework:consul.
package main

import (
	"os"

	"github.com/ha-framework/ha-framework/agents/consul/consulagent"
)

func main() { os.Exit(consulagent.New().Main()) }
