// Command example links what the agent example links, initializes it, prints a
// line and exits, running nothing of the agent: BenchmarkMonitorCost
// measures it as what the agent's packages cost at every start.
package main

import (
	"os"

	_ "github.com/ha-framework/ha-framework/agents/example/exampleagent"
)

func main() { os.Stdout.WriteString("ok\n") }
