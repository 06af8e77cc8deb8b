// Command docker-service is the OCF resource agent
// ocf:ha-framework:docker-service.
package main

import (
	"os"

	"github.com/ha-framework/ha-framework/agents/docker-service/dockerservice"
)

func main() { os.Exit(dockerservice.New().Main()) }
