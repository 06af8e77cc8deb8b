// Command docker-service links what the agent docker-service links, initializes it, prints a
// line and exits, running nothing of the agent: BenchmarkMonitorCost
// measures it as what the agent's packages cost at every start.
package main

import (
	"os"

	_ "github.com/ha-framework/ha-framework/agents/docker-service/dockerservice"
)

func main() { os.Stdout.WriteString("ok\n") }
