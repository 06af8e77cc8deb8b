// Package agents lists every agent this project ships, for the tests and
// tools that must cover them all (meta-data golden files, conformance).
package agents

import (
	exampleagent "github.com/ha-framework/ha-framework/agents/example/agent"
	"github.com/ha-framework/ha-framework/ocf"
)

// Shipped is one agent of the collection.
type Shipped struct {
	Name  string     // the binary's name: ocf:ha-framework:NAME
	Agent ocf.Runner // the declaration, to run in-process
	// Params is a working configuration, for conformance tests.
	Params map[string]string
}

// All returns every shipped agent, in name order.
func All() []Shipped {
	return []Shipped{
		{Name: "example", Agent: exampleagent.New(), Params: map[string]string{"label": "conformance"}},
	}
}
