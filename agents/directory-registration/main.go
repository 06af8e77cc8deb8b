// Command directory-registration is the OCF resource agent
// ocf:ha-framework:directory-registration.
package main

import (
	"os"

	"github.com/ha-framework/ha-framework/agents/directory-registration/registration"
)

func main() { os.Exit(registration.New().Main()) }
