// Package agents lists every agent this project ships, for the tests and
// tools that must cover them all (meta-data golden files, conformance).
package agents

import (
	"github.com/ha-framework/ha-framework/agents/consul/consulagent"
	"github.com/ha-framework/ha-framework/agents/directory-registration/registration"
	"github.com/ha-framework/ha-framework/agents/docker-service/dockerservice"
	"github.com/ha-framework/ha-framework/agents/example/exampleagent"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxydynamic"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/gateway"
	"github.com/ha-framework/ha-framework/ocf"
)

// Shipped is one agent of the collection.
type Shipped struct {
	Name  string       // the binary's name: ocf:ha-framework:NAME
	Agent ocf.AnyAgent // the declaration, to run in-process
}

// All returns every shipped agent, in name order.
func All() []Shipped {
	return []Shipped{
		{Name: "consul", Agent: consulagent.New()},
		{Name: "directory-registration", Agent: registration.New()},
		{Name: "docker-service", Agent: dockerservice.New()},
		{Name: "example", Agent: exampleagent.New()},
		{Name: "haproxy-dynamic", Agent: haproxydynamic.New()},
		{Name: "openresty-gateway", Agent: gateway.New()},
	}
}
