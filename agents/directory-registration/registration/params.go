package registration

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/ocf"
)

// Config is the decoded instance parameters.
type Config struct {
	ConsulAddress             string
	TokenFile                 string
	CAFile, CertFile, KeyFile string

	DefinitionFile string

	ServiceName    string
	ServiceID      string
	ServiceAddress string
	ServicePort    int
	ServiceTags    []string
	ServiceMeta    []string

	CheckHTTP     string
	CheckTCP      string
	CheckGRPC     string
	CheckArgs     string
	CheckTTL      time.Duration
	CheckInterval time.Duration
	CheckTimeout  time.Duration

	DeregisterAfter time.Duration
	OnCritical      string
	WaitFor         string
	DrainPeriod     time.Duration

	rt runtime // resolved by validate
}

// The values of on_critical and wait_for.
const (
	criticalDegraded = "degraded"
	criticalFailure  = "failure"

	waitAgent   = "agent"
	waitCatalog = "catalog"
	waitPassing = "passing"
)

// fieldParams are the parameters that describe the service without a
// definition file; with one, they must stay unset.
var fieldParams = []string{
	"service_name", "service_id", "service_address", "service_port", "service_tags", "service_meta",
	"check_http", "check_tcp", "check_grpc", "check_args", "check_ttl", "check_interval", "check_timeout",
}

func params(c *Config) []ocf.Param {
	// Everything that shapes the registration is reloadable: reload-agent
	// re-registers in place, which Consul does atomically, so a change
	// never takes the service out of discovery.
	def := ocf.Reloadable()
	return []ocf.Param{
		ocf.String(&c.ConsulAddress, "consul_address", "Local Consul agent's HTTP API", ocf.Default("127.0.0.1:8500"),
			ocf.NoSpace(), ocf.Check(consulapi.CheckAddress),
			ocf.Long("Address of the Consul agent on this node: host:port, http://host:port or https://host:port. "+
				"Always the local agent: the registration belongs to the node the resource runs on.")),
		ocf.String(&c.TokenFile, "token_file", "ACL token file", def, ocf.AbsolutePath(),
			ocf.Long("File holding the ACL token for registering (service:write on the service, plus read access to the agent's services and checks). "+
				"Mode 0600, owned by root. Never give the token itself as a parameter.")),
		ocf.String(&c.CAFile, "ca_file", "TLS CA file for https consul_address", ocf.AbsolutePath()),
		ocf.String(&c.CertFile, "cert_file", "TLS client certificate file", ocf.AbsolutePath()),
		ocf.String(&c.KeyFile, "key_file", "TLS client key file", ocf.AbsolutePath()),

		ocf.String(&c.DefinitionFile, "definition_file", "Service definition file (Consul JSON)", def, ocf.AbsolutePath(),
			ocf.Long("A service definition in Consul's JSON format ({\"service\": {\"name\": ..., \"port\": ..., \"checks\": [...]}}), "+
				"read on every action; owned by root and not writable by group or others, since its checks run with the token. Checks may be script (args), http, tcp, grpc or ttl. "+
				"Either this or service_name with the other service_* and check_* parameters. "+
				"Pacemaker cannot see edits to the file: the depth-10 monitor re-registers when the file no longer matches the registration.")),

		ocf.String(&c.ServiceName, "service_name", "Service name", def, ocf.NoSpace(), ocf.Check(func(v string) error { return validName(v) })),
		ocf.String(&c.ServiceID, "service_id", "Service ID", def, ocf.NoSpace(), ocf.Check(func(v string) error { return validID(v) }),
			ocf.Long("The instance's ID on the local Consul agent. Default: NAME-NODE (the Pacemaker node name).")),
		ocf.String(&c.ServiceAddress, "service_address", "Service address", def, ocf.NoSpace(), ocf.Check(validHost),
			ocf.Long("Address clients use. Default: the Consul node's address.")),
		ocf.Port(&c.ServicePort, "service_port", "Service port", def),
		ocf.List(&c.ServiceTags, "service_tags", "Service tags", def, ocf.Printable()),
		ocf.List(&c.ServiceMeta, "service_meta", "Service meta (KEY=VALUE list)", def, ocf.Printable(), ocf.Check(func(v string) error {
			_, err := parseMetaList(ocf.SplitList(v))
			return err
		}), ocf.Long("Meta entries as KEY=VALUE separated by commas or spaces. ha_resource and ha_definition are the agent's own.")),

		ocf.String(&c.CheckHTTP, "check_http", "HTTP check URL", def, ocf.NoSpace(), ocf.Check(validHTTPURL),
			ocf.Long("Consul requests this URL every check_interval: 2xx is passing, 429 warning, anything else critical.")),
		ocf.String(&c.CheckTCP, "check_tcp", "TCP check address (host:port)", def, ocf.NoSpace(), ocf.Check(validHostPort)),
		ocf.String(&c.CheckGRPC, "check_grpc", "gRPC health check (host:port[/service])", def, ocf.NoSpace(), ocf.Check(validGRPC)),
		ocf.String(&c.CheckArgs, "check_args", "Script check command", def, ocf.Printable(),
			ocf.Long("Program and arguments, split at white space, that Consul runs every check_interval (exit 0 passing, 1 warning, else critical). "+
				"Consul accepts script checks over its API only with enable_script_checks=true, which must go with ACLs.")),
		ocf.Duration(&c.CheckTTL, "check_ttl", "TTL check refreshed by the monitor", def,
			ocf.Long("Adds a TTL check that every recurring monitor sets to passing: the instance turns critical when Pacemaker stops monitoring it "+
				"(node or Pacemaker down, maintenance-mode). Keep it well above the monitor interval, such as three times.")),
		ocf.Duration(&c.CheckInterval, "check_interval", "Interval of http, tcp, grpc and script checks", ocf.Default("10s"), def,
			ocf.MinDuration(time.Second)),
		ocf.Duration(&c.CheckTimeout, "check_timeout", "Timeout of http, tcp, grpc and script checks", def,
			ocf.Long("Default: Consul's (10s, or the interval if shorter).")),

		ocf.Duration(&c.DeregisterAfter, "deregister_critical_service_after", "Consul removes the instance after this long critical",
			ocf.Default("10m"), def, ocf.Check(zeroOrAtLeast(minDeregisterAfter)),
			ocf.Long("Applied to every check that does not set its own: a safety net that removes registrations Pacemaker can no longer clean up "+
				"(Consul restored them on a node where the service is gone). 0 disables it; Consul's minimum is 1m.")),
		ocf.Select(&c.OnCritical, "on_critical", "What a critical check makes the monitor report", []string{criticalDegraded, criticalFailure},
			ocf.Default(criticalDegraded), def,
			ocf.Long("degraded: the monitor succeeds with a warning (discovery already hides critical instances). "+
				"failure: the monitor fails, so Pacemaker recovers the group, per migration-threshold elsewhere.")),
		ocf.Select(&c.WaitFor, "wait_for", "What start waits for", []string{waitAgent, waitCatalog, waitPassing},
			ocf.Default(waitAgent), def,
			ocf.Long("agent: the local Consul agent holds the registration (works without a Consul leader; anti-entropy publishes it). "+
				"catalog: the catalog shows it. passing: the catalog shows it passing every check, so clients can use it.")),
		ocf.Duration(&c.DrainPeriod, "drain_period", "Time between maintenance and deregistration on stop", ocf.Default("5s"), def,
			ocf.Long("Stop first puts the instance in maintenance (out of discovery), waits this long for clients such as haproxy-dynamic "+
				"to finish their requests, then deregisters. Bounded by the stop timeout. 0 deregisters at once, without maintenance.")),
	}
}

var actions = []ocf.Operation{
	{Name: ocf.ActionStart, Timeout: 30 * time.Second},
	{Name: ocf.ActionStop, Timeout: 30 * time.Second},
	{Name: ocf.ActionMonitor, Timeout: 20 * time.Second, Interval: 10 * time.Second},
	{Name: ocf.ActionMonitor, Timeout: 30 * time.Second, Interval: 60 * time.Second, Depth: 10},
	{Name: ocf.ActionReloadAgent, Timeout: 30 * time.Second},
}

func zeroOrAtLeast(floor time.Duration) func(string) error {
	return func(v string) error {
		if d, _ := ocf.ParseDuration(v); d != 0 && d < floor {
			return fmt.Errorf("must be 0 (off) or at least %v, Consul's minimum", floor)
		}
		return nil
	}
}

func parseMetaList(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", kv)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("key %s given twice", k)
		}
		m[k] = v
	}
	if err := validMeta(m); err != nil {
		return nil, err
	}
	return m, nil
}

// fromParams builds the definition the service_* and check_* parameters
// describe. Each parameter was checked on its own when decoded; what is
// left is how they combine.
func fromParams(c *Config) (*api.AgentServiceRegistration, error) {
	if c.ServiceName == "" {
		return nil, errors.New("set definition_file, or service_name and the other service_* and check_* parameters")
	}
	meta, err := parseMetaList(c.ServiceMeta)
	if err != nil {
		return nil, fmt.Errorf("parameter service_meta: %w", err)
	}
	reg := &api.AgentServiceRegistration{
		ID: c.ServiceID, Name: c.ServiceName, Address: c.ServiceAddress, Port: c.ServicePort,
		Tags: c.ServiceTags, Meta: meta,
	}
	interval := c.CheckInterval.String()
	var timeout string
	if c.CheckTimeout > 0 {
		timeout = c.CheckTimeout.String()
	}
	if c.CheckArgs != "" {
		reg.Checks = append(reg.Checks, &api.AgentServiceCheck{Name: c.ServiceName + " script", Args: strings.Fields(c.CheckArgs), Interval: interval, Timeout: timeout})
	}
	if c.CheckHTTP != "" {
		reg.Checks = append(reg.Checks, &api.AgentServiceCheck{Name: c.ServiceName + " http", HTTP: c.CheckHTTP, Interval: interval, Timeout: timeout})
	}
	if c.CheckTCP != "" {
		reg.Checks = append(reg.Checks, &api.AgentServiceCheck{Name: c.ServiceName + " tcp", TCP: c.CheckTCP, Interval: interval, Timeout: timeout})
	}
	if c.CheckGRPC != "" {
		reg.Checks = append(reg.Checks, &api.AgentServiceCheck{Name: c.ServiceName + " grpc", GRPC: c.CheckGRPC, Interval: interval, Timeout: timeout})
	}
	if c.CheckTTL > 0 {
		reg.Checks = append(reg.Checks, &api.AgentServiceCheck{Name: "Pacemaker monitor", TTL: c.CheckTTL.String(),
			Notes: "set to passing by every recurring monitor of the Pacemaker resource"})
	}
	return reg, nil
}
