// Package consulagent is ocf:ha-framework:consul: a Consul agent (server or
// client) run as a cluster resource, usually a clone on every node.
package consulagent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/internal/version"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/cluster"
	"github.com/ha-framework/ha-framework/ocf/daemon"
	"github.com/ha-framework/ha-framework/ocf/process"
)

type request = ocf.Request[Config]

// New returns the agent declaration.
func New() *ocf.Agent[Config] {
	d := &daemon.Daemon[Config]{
		Name:       "consul",
		Command:    command,
		Prepare:    prepare,
		Ready:      ready,
		Deep:       deepCheck,
		Reload:     reload,
		BeforeStop: leave,
		StopSignal: syscall.SIGTERM,
	}
	return d.Agent(&ocf.Agent[Config]{
		Name: "consul", Version: version.Version,
		ShortDesc: "Consul agent (server or client)",
		LongDesc: "Runs a Consul agent as a cluster resource, normally cloned on every node " +
			"(clone interleave=true). Start returns once the HTTP API answers (and, with wait_for_leader, once a leader is known). " +
			"Monitor depth 0 checks the process and the HTTP API; depth 10 checks the leader, this node's membership " +
			"and, on servers, autopilot's view of the raft peers (problems there are reported as degraded, not as failures). " +
			"Stop leaves the cluster per leave_on_stop, then stops the process and verifies it is gone.",
		Params:     params,
		Operations: actions,
		Validate:   validate,
	})
}

func params(c *Config) []ocf.Param {
	return []ocf.Param{
		ocf.String(&c.Binary, "binary", "Consul binary", ocf.Default("consul"), ocf.Printable(),
			ocf.Long("Path of the consul binary, or a name looked up in PATH.")),
		ocf.Select(&c.Mode, "mode", "Server or client agent", []string{"server", "client"}, ocf.Default("client"),
			ocf.Long("The same on every node of a clone. For servers on some nodes and clients on the others, set servers instead.")),
		ocf.List(&c.Servers, "servers", "Nodes that run a server", ocf.Printable(),
			ocf.Long("Pacemaker node names: the agent runs a server on the nodes listed and a client on every other node, "+
				"so one clone covers the whole cluster and a node added later joins as a client. Set it or mode, not both. "+
				"With servers set, bootstrap_expect defaults to the number of nodes listed and retry_join to the nodes listed.")),
		ocf.String(&c.Datacenter, "datacenter", "Datacenter name", ocf.Default("dc1"), ocf.NoSpace()),
		ocf.String(&c.NodeName, "node_name", "Consul node name", ocf.NoSpace(),
			ocf.Long("The node's name in Consul. Default: the host name.")),
		ocf.String(&c.DataDir, "data_dir", "Data directory", ocf.Default("/var/lib/consul"), ocf.UniqueGroup("data_dir"),
			ocf.AbsolutePath()),
		ocf.String(&c.ConfigDir, "config_dir", "Extra configuration directory", ocf.Printable(),
			ocf.Long("A directory of Consul configuration files loaded after the generated configuration (ACLs, services, anything not covered by parameters).")),
		ocf.String(&c.ExtraConfig, "extra_config", "Extra configuration file", ocf.Printable(),
			ocf.Long("One more Consul configuration file (HCL or JSON), loaded last.")),
		ocf.String(&c.BindAddr, "bind_addr", "Cluster bind address", ocf.Printable(),
			ocf.Long("Address for cluster traffic (serf, raft). Default: Consul's choice, the node's only private IPv4 address; a node with several needs this set. "+
				"A clone shares one value on every node, so give a go-sockaddr template that picks each node's cluster address, e.g. "+
				`{{ GetAllInterfaces | include "network" "10.0.0.0/24" | attr "address" }}, `+
				"where the network is the cluster network as the interfaces are configured (a smaller one matches nothing).")),
		ocf.String(&c.AdvertiseAddr, "advertise_addr", "Advertised address", ocf.NoSpace()),
		ocf.String(&c.ClientAddr, "client_addr", "Client interfaces (HTTP, DNS)", ocf.Default("127.0.0.1"), ocf.Printable()),
		ocf.Port(&c.HTTPPort, "http_port", "HTTP API port", ocf.Default("8500")),
		ocf.Port(&c.ServerPort, "server_port", "Server RPC port", ocf.Default("8300")),
		ocf.Port(&c.SerfLANPort, "serf_lan_port", "Serf LAN port", ocf.Default("8301")),
		ocf.Port(&c.SerfWANPort, "serf_wan_port", "Serf WAN port", ocf.Default("8302")),
		ocf.Int(&c.DNSPort, "dns_port", "DNS port (-1 disables)", ocf.Default("8600"), ocf.Range(-1, 65535)),
		ocf.Int(&c.GRPCPort, "grpc_port", "gRPC port (-1 disables)", ocf.Default("-1"), ocf.Range(-1, 65535)),
		ocf.Int(&c.GRPCTLSPort, "grpc_tls_port", "gRPC TLS port (-1 disables)", ocf.Default("-1"), ocf.Range(-1, 65535)),
		ocf.Int(&c.BootstrapExp, "bootstrap_expect", "Servers expected before the first election", ocf.Default("0"), ocf.Range(0, 15),
			ocf.Long("Servers only: how many servers must join before the first leader election. 0 leaves it unset, "+
				"or, with servers set, means the number of nodes listed there.")),
		ocf.Int(&c.RaftMultiplier, "raft_multiplier", "Scale of the servers' Raft timing", ocf.Default("1"), ocf.Range(1, 10),
			ocf.Long("Servers only: Consul's performance.raft_multiplier. 1, Consul's recommendation for production, lets the servers notice a lost leader "+
				"and elect another within about 2 s; Consul's own default, 5, takes about 5 times longer and suits only very slow machines. "+
				"While there is no leader, new registrations cannot reach the catalog: this bounds how fast a failed-over service is routed again.")),
		ocf.List(&c.RetryJoin, "retry_join", "Addresses to join", ocf.Printable(),
			ocf.Long("Addresses (host or host:port) of other agents to join, retried until one answers. Default: the nodes in servers, if set.")),
		ocf.String(&c.TokenFile, "token_file", "ACL token file", ocf.Printable(),
			ocf.Long("File holding the ACL token this agent uses for its own API calls (monitor, leave, reload). Mode 0600, owned by root. Never give the token itself as a parameter.")),
		ocf.String(&c.CAFile, "ca_file", "TLS CA file", ocf.Printable()),
		ocf.String(&c.CertFile, "cert_file", "TLS certificate file", ocf.Printable()),
		ocf.String(&c.KeyFile, "key_file", "TLS key file", ocf.Printable()),
		ocf.Select(&c.LeaveOnStop, "leave_on_stop", "Leave the cluster on stop", []string{"auto", "true", "false"}, ocf.Default("auto"),
			ocf.Long("auto: clients leave, servers do not (a leaving server shrinks the quorum). true or false force it.")),
		ocf.Bool(&c.WaitForLeader, "wait_for_leader", "Start waits for a leader", ocf.Default("false"),
			ocf.Long("Servers: start returns only once the cluster has a leader. A first leader needs bootstrap_expect servers, and Pacemaker may start "+
				"clone instances one at a time (it throttles under load) or with a node still down: a start that waits then times out and bans its node. "+
				"Off, start returns once the agent answers, and the depth 10 monitor reports degraded while there is no leader.")),
		ocf.Select(&c.LogLevel, "log_level", "Consul log level", []string{"trace", "debug", "info", "warn", "error"},
			ocf.Default("info"), ocf.Reloadable()),
		ocf.Duration(&c.PeersDegradedAfter, "peers_degraded_after", "How long a raft peer may be unhealthy before the deep monitor reports it",
			ocf.Default("30s"), ocf.Reloadable(),
			ocf.Long("Servers: the depth 10 monitor reports degraded once autopilot has called a server unhealthy for this long (0: at once). "+
				"A node loss makes its server unhealthy at once, and Pacemaker's DC recalculates the transition under way (the fencing, "+
				"the failed-over services' starts) at every change of a monitor's result, a second or more each time; a node back within this time is never reported.")),
		ocf.String(&c.LogFile, "log_file", "Consul output file", ocf.Printable(),
			ocf.Long("Where the agent's output goes. Default: /var/log/ha-framework/consul-INSTANCE.log.")),
	}
}

var actions = []ocf.Operation{
	{Name: ocf.ActionStart, Timeout: 120 * time.Second},
	{Name: ocf.ActionStop, Timeout: 60 * time.Second},
	{Name: ocf.ActionMonitor, Timeout: 20 * time.Second, Interval: 10 * time.Second},
	{Name: ocf.ActionMonitor, Timeout: 30 * time.Second, Interval: 60 * time.Second, Depth: 10},
}

// configPath is the generated configuration of one resource instance.
func configPath(r *request) string { return r.StatePath(".json") }

// validate checks the parts of the configuration the parameters alone
// cannot: combinations, the files parameters name, the token file.
func validate(ctx context.Context, r *request) error {
	c := r.Config
	if len(c.Servers) > 0 {
		if _, set := r.Env.Param("mode"); set {
			return ocf.Errorf(ocf.Misconfigured, "remove mode or servers: servers decides the mode on each node")
		}
		if c.BootstrapExp > len(c.Servers) {
			return ocf.Errorf(ocf.Misconfigured, "bootstrap_expect=%d exceeds the %d nodes in servers: no leader could ever be elected", c.BootstrapExp, len(c.Servers))
		}
	} else if c.Mode == "client" && c.BootstrapExp > 0 {
		return ocf.Errorf(ocf.Misconfigured, "remove bootstrap_expect=%d or set mode=server: it applies to servers only", c.BootstrapExp)
	}
	if _, err := isServer(ctx, r); err != nil {
		return err
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return ocf.Errorf(ocf.Misconfigured, "set both cert_file and key_file, or neither")
	}
	for _, f := range []struct{ param, path string }{
		{"config_dir", c.ConfigDir}, {"extra_config", c.ExtraConfig},
		{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if !filepath.IsAbs(f.path) {
			return ocf.Errorf(ocf.Misconfigured, "%s=%q must be an absolute path", f.param, f.path)
		}
		if _, err := os.Stat(f.path); err != nil {
			return ocf.Errorf(ocf.InvalidArgs, "%s: %s is missing on this node: %w", f.param, f.path, err)
		}
	}
	_, err := token(r)
	return err
}

// isServer says whether this instance runs a server: mode, or with
// servers set, whether Pacemaker's name for this node is listed there.
// Pacemaker passes that name to every action, so this costs no process;
// only a hand-run action asks crm_node.
func isServer(ctx context.Context, r *request) (bool, error) {
	c := r.Config
	if len(c.Servers) == 0 {
		return c.Mode == "server", nil
	}
	node, err := (cluster.CLI{}).LocalNode(ctx, r.Env)
	if err != nil {
		return false, ocf.Errorf(ocf.InvalidArgs, "servers is set but this node's Pacemaker name is unknown: %w", err)
	}
	return slices.Contains(c.Servers, node), nil
}

// token reads the ACL token from token_file, "" when unset.
func token(r *request) (string, error) {
	if r.Config.TokenFile == "" {
		return "", nil
	}
	return ocf.ReadSecretFile(r.Config.TokenFile, "token_file")
}

// command is consul agent with the generated configuration, then the
// administrator's own files.
func command(ctx context.Context, r *request) (daemon.Command, error) {
	c := r.Config
	args := []string{"agent", "-config-file=" + configPath(r)}
	if c.ConfigDir != "" {
		args = append(args, "-config-dir="+c.ConfigDir)
	}
	if c.ExtraConfig != "" {
		args = append(args, "-config-file="+c.ExtraConfig)
	}
	return daemon.Command{Path: c.Binary, Param: "binary", Args: args, LogFile: logFileOf(r)}, nil
}

// prepare writes and checks the configuration and the data directory.
func prepare(ctx context.Context, r *request, cmd daemon.Command) error {
	if err := writeConfig(ctx, r, cmd.Path); err != nil {
		return err
	}
	if err := os.MkdirAll(r.Config.DataDir, 0o700); err != nil {
		return ocf.Errorf(ocf.InsufficientPrivileges, "data_dir: cannot create %s: %w", r.Config.DataDir, err)
	}
	return setAsideBadNodeID(r)
}

// client is an API client of this agent, with the token. Every request
// carries its own context (query), so none outlives the action.
func client(ctx context.Context, r *request) (*api.Client, error) {
	tok, err := token(r)
	if err != nil {
		return nil, err
	}
	c := r.Config
	return consulapi.NewClient(ctx, consulapi.Options{
		Address: c.httpAddress(), Token: tok, CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
	})
}

func query(ctx context.Context) *api.QueryOptions { return (&api.QueryOptions{}).WithContext(ctx) }

// self reads /v1/agent/self under ctx (the api package's Self takes none).
func self(ctx context.Context, c *api.Client) (map[string]map[string]any, error) {
	var out map[string]map[string]any
	_, err := c.Raw().Query("/v1/agent/self", &out, query(ctx))
	return out, err
}

// setAsideBadNodeID renames data_dir/node-id when it holds no UUID, so
// that Consul makes a new one instead of refusing to start. A node that
// lost power right after Consul wrote the file can find it zero-filled
// (the file system kept its size, not its data; seen on the VM test
// cluster after a hard power-off). The servers replace a server that
// comes back with a new ID at the same address.
func setAsideBadNodeID(r *request) error {
	path := filepath.Join(r.Config.DataDir, "node-id")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return ocf.Errorf(ocf.InsufficientPrivileges, "reading %s: %w", path, err)
	}
	if validNodeID(strings.TrimSpace(string(data))) {
		return nil
	}
	aside := path + ".invalid"
	if err := os.Rename(path, aside); err != nil {
		return ocf.Errorf(ocf.InsufficientPrivileges, "setting aside the invalid %s: %w", path, err)
	}
	r.Log.Warn("node-id in data_dir held no UUID (a power loss right after it was written?); Consul makes a new one", "kept_as", aside)
	return nil
}

// validNodeID reports whether s is a UUID as Consul writes it:
// 8-4-4-4-12 hexadecimal digits.
func validNodeID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, ch := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if ch != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdefABCDEF", ch):
			return false
		}
	}
	return true
}

func logFileOf(r *request) string {
	if r.Config.LogFile != "" {
		return r.Config.LogFile
	}
	return filepath.Join("/var/log/ha-framework", "consul-"+strings.ReplaceAll(r.Env.Instance(), "/", "_")+".log")
}

// writeConfig renders the configuration and has consul validate it with
// the other files it will load, so a mistake is reported by start and
// reload-agent in Consul's own words instead of by a crashing agent.
func writeConfig(ctx context.Context, r *request, binary string) error {
	server, err := isServer(ctx, r)
	if err != nil {
		return err
	}
	data, err := r.Config.generated(server)
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "rendering configuration: %w", err)
	}
	path := configPath(r)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return ocf.Errorf(ocf.InsufficientPrivileges, "creating state directory: %w", err)
	}
	tmp := path + ".new.json"
	if err := process.WriteFileAtomic(tmp, data, 0o600); err != nil {
		return ocf.Errorf(ocf.GenericFailure, "writing configuration: %w", err)
	}
	defer os.Remove(tmp)
	args := []string{"validate", "-quiet", tmp}
	if r.Config.ConfigDir != "" {
		args = append(args, r.Config.ConfigDir)
	}
	if r.Config.ExtraConfig != "" {
		args = append(args, r.Config.ExtraConfig)
	}
	if out, err := process.Run(ctx, binary, args...); err != nil {
		why := process.FirstLine(out)
		var ee *process.ExitError
		if errors.As(err, &ee) && why == "" {
			why = process.FirstLine(ee.Stderr)
		}
		if why == "" {
			why = err.Error()
		}
		return validateRejected(r.Config, why)
	}
	if err := os.Rename(tmp, path); err != nil {
		return ocf.Errorf(ocf.GenericFailure, "installing configuration: %w", err)
	}
	return nil
}

// ready succeeds once the HTTP API answers and, for servers that wait
// for one, a leader is known.
func ready(ctx context.Context, r *request, p daemon.Process) error {
	c, err := client(ctx, r)
	if err != nil {
		return err
	}
	if _, err := self(ctx, c); err != nil {
		return fmt.Errorf("HTTP API at %s: %w", r.Config.httpAddress(), err)
	}
	server, err := isServer(ctx, r)
	if err != nil {
		return err
	}
	if server && r.Config.WaitForLeader {
		leader, err := c.Status().LeaderWithQueryOptions(query(ctx))
		if err != nil {
			return fmt.Errorf("asking for the leader: %w", err)
		}
		if leader == "" {
			return errors.New("no cluster leader yet (waiting for bootstrap_expect servers)")
		}
	}
	return nil
}

// deepCheck reports cluster-level problems as degraded: restarting this
// agent would not give the cluster a leader, and would make things worse.
func deepCheck(ctx context.Context, r *request, p daemon.Process) error {
	c, err := client(ctx, r)
	if err != nil {
		return err
	}
	me, err := self(ctx, c)
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "consul (pid %d) runs but its HTTP API at %s does not answer: %w", p.PID, r.Config.httpAddress(), err)
	}
	leader, err := c.Status().LeaderWithQueryOptions(query(ctx))
	if err != nil {
		return ocf.Errorf(ocf.Degraded, "cannot ask for the cluster leader: %v", err)
	}
	if leader == "" {
		return ocf.Errorf(ocf.Degraded, "the Consul cluster has no leader")
	}
	name, _ := me["Config"]["NodeName"].(string)
	if status, _ := me["Member"]["Status"].(float64); status != 1 {
		return ocf.Errorf(ocf.Degraded, "node %s is not an alive member of the cluster (serf status %v)", name, status)
	}
	if server, err := isServer(ctx, r); err != nil || !server {
		return err
	}
	health, err := c.Operator().AutopilotServerHealth(query(ctx))
	if err != nil {
		if consulapi.IsForbidden(err) {
			r.Log.Debug("autopilot health not readable with this token", "err", err)
			return nil
		}
		return ocf.Errorf(ocf.Degraded, "autopilot health: %v", err)
	}
	if bad, recent := unhealthyPeers(health, time.Now(), r.Config.PeersDegradedAfter); len(bad) > 0 {
		return ocf.Errorf(ocf.Degraded, "raft peers unhealthy: %s (failure tolerance %d)", strings.Join(bad, ", "), health.FailureTolerance)
	} else if len(recent) > 0 {
		r.Log.Info("raft peers unhealthy for less than peers_degraded_after", "servers", strings.Join(recent, ","),
			"peers_degraded_after", r.Config.PeersDegradedAfter)
	}
	return nil
}

// unhealthyPeers splits the servers autopilot calls unhealthy into those
// unhealthy for at least after at now (bad: reported) and those unhealthy
// for less (recent: not yet). StableSince is when a server's health last
// changed, by the leader's clock; a server without it counts as bad.
func unhealthyPeers(h *api.OperatorHealthReply, now time.Time, after time.Duration) (bad, recent []string) {
	for _, s := range h.Servers {
		switch {
		case s.Healthy:
		case s.StableSince.IsZero() || now.Sub(s.StableSince) >= after:
			bad = append(bad, s.Name)
		default:
			recent = append(recent, s.Name)
		}
	}
	return bad, recent
}

// leave makes a client (or, with leave_on_stop=true, a server) leave the
// cluster before the stop signal.
func leave(ctx context.Context, r *request, p daemon.Process) error {
	server, err := isServer(ctx, r)
	if err != nil {
		// Not leaving is the safe side: a server that left would shrink
		// the quorum, a client that did not is only reported failed.
		r.Log.Warn("not leaving the cluster: server or client unknown", "err", err)
		return nil
	}
	if !r.Config.leaves(server) {
		return nil
	}
	c, err := client(ctx, r)
	if err != nil {
		return err
	}
	_, err = c.Raw().Write("/v1/agent/leave", nil, nil, (&api.WriteOptions{}).WithContext(ctx))
	return err
}

// reload applies reloadable parameters (log_level) with Consul's own
// reload (SIGHUP), after validating the new configuration.
func reload(ctx context.Context, r *request, p daemon.Process) error {
	if err := writeConfig(ctx, r, p.Command.Path); err != nil {
		return err
	}
	if err := daemon.Signal[Config](syscall.SIGHUP)(ctx, r, p); err != nil {
		return err
	}
	r.Log.Info("consul reloaded", "pid", p.PID, "log_level", r.Config.LogLevel)
	return nil
}

// validateRejected is the error for a configuration that consul validate
// refused with the message why. What the parameters say holds on every
// node (Misconfigured); the node's own files, or its addresses when
// bind_addr leaves the choice to Consul, hold on this node only (InvalidArgs).
func validateRejected(c *Config, why string) error {
	if c.BindAddr == "" && c.AdvertiseAddr == "" && strings.Contains(why, "Multiple private IPv4 addresses") {
		// Kept short: Pacemaker shows 128 bytes of a reason.
		return ocf.Errorf(ocf.InvalidArgs, "this node has several private IPv4 addresses; set bind_addr to the cluster one (an address or a go-sockaddr template)")
	}
	why = strings.TrimPrefix(why, "Config validation failed: ")
	if c.ConfigDir != "" || c.ExtraConfig != "" {
		// The node's own files may be what is wrong.
		return ocf.Errorf(ocf.InvalidArgs, "fix config_dir, extra_config or the parameters; consul validate says: %s", why)
	}
	return ocf.Errorf(ocf.Misconfigured, "fix the parameters; consul validate says: %s", why)
}
