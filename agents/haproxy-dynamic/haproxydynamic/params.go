package haproxydynamic

import (
	"errors"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/ocf"
)

// Config is the decoded instance parameters.
type Config struct {
	Routes     string
	RoutesFile string

	ConsulAddress string
	TokenFile     string
	Datacenter    string
	Tag           string

	Binary   string
	StateDir string
	Socket   string

	Slots          int
	MaxSlots       int
	HardStopAfter  time.Duration
	DrainPeriod    time.Duration
	TimeoutConnect time.Duration
	TimeoutIdle    time.Duration
	Retries        int
	NonePassing    string
	// KeepDegradedAfter is how long none_passing=keep holds a route
	// before the monitor reports it.
	KeepDegradedAfter time.Duration
}

func params(c *Config) []ocf.Param {
	// Everything that shapes routing is reloadable: reload-agent
	// re-renders and reloads HAProxy seamlessly, so a new route never
	// drops the connections of the others.
	re := ocf.Reloadable()
	return []ocf.Param{
		ocf.String(&c.Routes, "routes", "Routed services", re, ocf.Printable(), ocf.Check(func(v string) error { _, err := routes.Parse(v); return err }),
			ocf.Long("Services to route, separated by commas or spaces: NAME=[ADDR:]PORT[/OPTION]..., where ADDR defaults to 127.0.0.1 and "+
				"each OPTION is a mode (tcp, the default, or http), a balance algorithm (roundrobin, the default, leastconn, static-rr, first, source, random) "+
				"or check (HAProxy health-checks instances too). Example: web=127.0.0.1:8081/http,db=5433/tcp/leastconn/check. "+
				"Either this or routes_file.")),
		ocf.String(&c.RoutesFile, "routes_file", "Routes file (JSON)", re, ocf.AbsolutePath(),
			ocf.Long(`Routes as JSON, the same on every node: {"routes": [{"service": "web", "listen": "127.0.0.1:8081", "mode": "http", "balance": "leastconn", "check": true, "check_path": "/health", "tag": "v2"}]}. `+
				"Read at start and reload-agent. Pacemaker cannot see edits to the file: after editing it, restart the resource or change a reloadable parameter.")),
		ocf.String(&c.ConsulAddress, "consul_address", "Local Consul agent's HTTP API", ocf.Default("127.0.0.1:8500"), re, ocf.NoSpace(), ocf.Check(consulapi.CheckPlainAddress),
			ocf.Long("host:port or http://host:port of the Consul agent on this node.")),
		ocf.String(&c.TokenFile, "token_file", "ACL token file", re, ocf.AbsolutePath(),
			ocf.Long("File holding an ACL token with service:read on the routed services and node:read. Mode 0600, owned by root. Never give the token itself as a parameter.")),
		ocf.String(&c.Datacenter, "datacenter", "Consul datacenter of the services", re, ocf.NoSpace(),
			ocf.Long("Default: the local agent's datacenter.")),
		ocf.String(&c.Tag, "tag", "Route only instances with this Consul tag", re, ocf.NoSpace(),
			ocf.Long("A route in routes_file may set its own tag.")),
		ocf.String(&c.Binary, "binary", "HAProxy binary", ocf.Default("haproxy"), ocf.Printable(),
			ocf.Long("Name (looked up in PATH) or absolute path of haproxy, 2.6 or later.")),
		ocf.String(&c.StateDir, "state_dir", "Directory for the configuration, sockets and status", ocf.AbsolutePath(), ocf.NoSpace(), ocf.Check(noSpace),
			ocf.Long("Holds the rendered haproxy.cfg, the pid files, the server state file, the watcher's configuration and status, and the logs. "+
				"Default: HA_RSCTMP/haproxy-dynamic-RESOURCE.d (under /run/resource-agents).")),
		ocf.String(&c.Socket, "socket", "HAProxy runtime API socket", ocf.AbsolutePath(), ocf.NoSpace(), ocf.Check(noSpace),
			ocf.Long("The admin stats socket (mode 0600) the watcher applies changes through. Default: state_dir/admin.sock.")),
		ocf.Int(&c.Slots, "slots", "Server slots per backend", ocf.Default("10"), ocf.Range(1, 1000), re,
			ocf.Long("Each backend has this many server slots; instances fill them at run time without a reload. "+
				"When a service has more passing instances, HAProxy is reloaded with the slots grown by this step.")),
		ocf.Int(&c.MaxSlots, "max_slots", "Most server slots per backend", ocf.Default("1000"), ocf.Range(1, 10000), re,
			ocf.Long("Slots never grow beyond this (nor below slots): every reload checks the configuration, which takes HAProxy about a second per ten thousand servers. "+
				"Passing instances beyond it are left out, and the monitor reports degraded while any are. Slots shrink again when the service shrinks.")),
		ocf.Duration(&c.HardStopAfter, "hard_stop_after", "Longest life of old HAProxy workers", ocf.Default("30s"), re, ocf.MinDuration(time.Second),
			ocf.Long("After a reload or at stop, old workers finish their sessions for at most this long. Keep the stop timeout above it.")),
		ocf.Duration(&c.DrainPeriod, "drain_period", "Drain time of a departed instance", ocf.Default("10s"), re,
			ocf.Long("An instance that leaves Consul's passing set gets no new sessions at once; its existing sessions are cut after this long, or as soon as it has none.")),
		ocf.Duration(&c.TimeoutConnect, "timeout_connect", "HAProxy timeout connect", ocf.Default("5s"), re, ocf.MinDuration(time.Millisecond)),
		ocf.Int(&c.Retries, "retries", "Connection retries", ocf.Default("3"), ocf.Range(1, 100), re,
			ocf.Long("How often HAProxy tries again after a failed connection (refused, or not established within timeout_connect) and, in http mode, "+
				"after an idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) that got no response; each try may go to another instance. "+
				"A refused try waits min(timeout_connect, 1s) before the next (the first retry of a request that got no response goes at once), "+
				"so requests wait about retries × min(timeout_connect, 1s) for an instance "+
				"to come back (retries × timeout_connect when connections go unanswered) before they fail.")),
		ocf.Select(&c.NonePassing, "none_passing", "What a backend does when no instance passes", []string{nonePassingKeep, nonePassingReject},
			ocf.Default(nonePassingKeep), re,
			ocf.Long("keep: go on routing to the last passing instances, so that requests are retried (see retries) and reach the first instance "+
				"that passes again; the monitor reports degraded once this lasts keep_degraded_after. In http mode, an idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) "+
				"sent meanwhile, or in flight when its instance crashed, succeeds if an instance passes within the retries window "+
				"(HAProxy opens a server connection per request for this). Other methods in flight fail; in tcp mode only new connections wait, "+
				"and connections established to the lost instance are cut. "+
				"reject: take the instances out at once, so requests fail fast (HTTP 503, or a closed TCP connection).")),
		ocf.Duration(&c.KeepDegradedAfter, "keep_degraded_after", "How long none_passing=keep may last before the monitor reports it",
			ocf.Default("60s"), re,
			ocf.Long("A node loss keeps the route of a service with one instance until Pacemaker has started it elsewhere. Pacemaker records every change "+
				"of a monitor's result, and its DC recalculates the transition under way at each, a second or more in the middle of that failover, "+
				"so the monitor reports degraded only once no instance has passed for this long (0: at once).")),
		ocf.Duration(&c.TimeoutIdle, "timeout_idle", "HAProxy client and server inactivity timeout", ocf.Default("5m"), re, ocf.MinDuration(time.Second),
			ocf.Long("Raise it for long-lived idle connections such as database pools.")),
	}
}

var actions = []ocf.Operation{
	{Name: ocf.ActionStart, Timeout: 30 * time.Second},
	{Name: ocf.ActionStop, Timeout: 60 * time.Second},
	{Name: ocf.ActionMonitor, Timeout: 20 * time.Second, Interval: 10 * time.Second},
	{Name: ocf.ActionMonitor, Timeout: 30 * time.Second, Interval: 60 * time.Second, Depth: 10},
	{Name: ocf.ActionReloadAgent, Timeout: 60 * time.Second},
}

// Values of none_passing.
const (
	nonePassingKeep   = "keep"
	nonePassingReject = "reject"
)

// noSpace keeps paths writable into haproxy.cfg without quoting.
func noSpace(v string) error {
	if strings.ContainsAny(v, " \t\n\"'#\\") {
		return errors.New("must not contain white space, quotes, '#' or '\\'")
	}
	return nil
}
