// Package agent is ocf:ha-framework:consul: a Consul agent (server or
// client) run as a cluster resource, usually a clone on every node.
package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/internal/version"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

type request = ocf.Request[Config]

// New returns the agent declaration.
func New() *ocf.Agent[Config] {
	return &ocf.Agent[Config]{
		Name: "consul", Version: version.Version,
		ShortDesc: "Consul agent (server or client)",
		LongDesc: "Runs a Consul agent as a cluster resource, normally cloned on every node " +
			"(clone interleave=true). Start returns once the HTTP API answers (and, with wait_for_leader, once a leader is known). " +
			"Monitor depth 0 checks the process and the HTTP API; depth 10 checks the leader, this node's membership " +
			"and, on servers, autopilot's view of the raft peers (problems there are reported as degraded, not as failures). " +
			"Stop leaves the cluster per leave_on_stop, then stops the process and verifies it is gone.",
		Exclusive:   true,
		Params:      params,
		Actions:     actions,
		Validate:    validate,
		Start:       start,
		Stop:        stop,
		Monitor:     monitor,
		ReloadAgent: reload,
	}
}

func params(c *Config) []ocf.Param {
	return []ocf.Param{
		ocf.String(&c.Binary, "binary", "Consul binary", ocf.Default("consul"),
			ocf.Long("Path of the consul binary, or a name looked up in PATH.")),
		ocf.Select(&c.Mode, "mode", "Server or client agent", []string{"server", "client"}, ocf.Default("client")),
		ocf.String(&c.Datacenter, "datacenter", "Datacenter name", ocf.Default("dc1")),
		ocf.String(&c.NodeName, "node_name", "Consul node name",
			ocf.Long("The node's name in Consul. Default: the host name.")),
		ocf.String(&c.DataDir, "data_dir", "Data directory", ocf.Default("/var/lib/consul"), ocf.UniqueGroup("data_dir"),
			ocf.AbsolutePath()),
		ocf.String(&c.ConfigDir, "config_dir", "Extra configuration directory",
			ocf.Long("A directory of Consul configuration files loaded after the generated configuration (ACLs, services, anything not covered by parameters).")),
		ocf.String(&c.ExtraConfig, "extra_config", "Extra configuration file",
			ocf.Long("One more Consul configuration file (HCL or JSON), loaded last.")),
		ocf.String(&c.BindAddr, "bind_addr", "Cluster bind address",
			ocf.Long("Address for cluster traffic (serf, raft). Default: Consul's choice, the node's only private IPv4 address; a node with several needs this set. "+
				"A clone shares one value on every node, so give a go-sockaddr template that picks each node's cluster address, e.g. "+
				`{{ GetAllInterfaces | include "network" "10.0.0.0/24" | attr "address" }}, `+
				"where the network is the cluster network as the interfaces are configured (a smaller one matches nothing).")),
		ocf.String(&c.AdvertiseAddr, "advertise_addr", "Advertised address"),
		ocf.String(&c.ClientAddr, "client_addr", "Client interfaces (HTTP, DNS)", ocf.Default("127.0.0.1")),
		ocf.Port(&c.HTTPPort, "http_port", "HTTP API port", ocf.Default("8500")),
		ocf.Port(&c.ServerPort, "server_port", "Server RPC port", ocf.Default("8300")),
		ocf.Port(&c.SerfLANPort, "serf_lan_port", "Serf LAN port", ocf.Default("8301")),
		ocf.Port(&c.SerfWANPort, "serf_wan_port", "Serf WAN port", ocf.Default("8302")),
		ocf.Int(&c.DNSPort, "dns_port", "DNS port (-1 disables)", ocf.Default("8600"), ocf.Range(-1, 65535)),
		ocf.Int(&c.GRPCPort, "grpc_port", "gRPC port (-1 disables)", ocf.Default("-1"), ocf.Range(-1, 65535)),
		ocf.Int(&c.GRPCTLSPort, "grpc_tls_port", "gRPC TLS port (-1 disables)", ocf.Default("-1"), ocf.Range(-1, 65535)),
		ocf.Int(&c.BootstrapExp, "bootstrap_expect", "Servers expected before the first election", ocf.Default("0"), ocf.Range(0, 15),
			ocf.Long("Servers only: how many servers must join before the first leader election. 0 leaves it unset.")),
		ocf.Int(&c.RaftMultiplier, "raft_multiplier", "Scale of the servers' Raft timing", ocf.Default("1"), ocf.Range(1, 10),
			ocf.Long("Servers only: Consul's performance.raft_multiplier. 1, Consul's recommendation for production, lets the servers notice a lost leader "+
				"and elect another within about 2 s; Consul's own default, 5, takes about 5 times longer and suits only very slow machines. "+
				"While there is no leader, new registrations cannot reach the catalog: this bounds how fast a failed-over service is routed again.")),
		ocf.List(&c.RetryJoin, "retry_join", "Addresses to join",
			ocf.Long("Addresses (host or host:port) of other agents to join, retried until one answers.")),
		ocf.String(&c.TokenFile, "token_file", "ACL token file",
			ocf.Long("File holding the ACL token this agent uses for its own API calls (monitor, leave, reload). Mode 0600, owned by root. Never give the token itself as a parameter.")),
		ocf.String(&c.CAFile, "ca_file", "TLS CA file"),
		ocf.String(&c.CertFile, "cert_file", "TLS certificate file"),
		ocf.String(&c.KeyFile, "key_file", "TLS key file"),
		ocf.Select(&c.LeaveOnStop, "leave_on_stop", "Leave the cluster on stop", []string{"auto", "true", "false"}, ocf.Default("auto"),
			ocf.Long("auto: clients leave, servers do not (a leaving server shrinks the quorum). true or false force it.")),
		ocf.Bool(&c.WaitForLeader, "wait_for_leader", "Start waits for a leader", ocf.Default("false"),
			ocf.Long("Servers: start returns only once the cluster has a leader. A first leader needs bootstrap_expect servers, and Pacemaker may start "+
				"clone instances one at a time (it throttles under load) or with a node still down: a start that waits then times out and bans its node. "+
				"Off, start returns once the agent answers, and the depth 10 monitor reports degraded while there is no leader.")),
		ocf.Select(&c.LogLevel, "log_level", "Consul log level", []string{"trace", "debug", "info", "warn", "error"},
			ocf.Default("info"), ocf.Reloadable()),
		ocf.String(&c.LogFile, "log_file", "Consul output file",
			ocf.Long("Where the agent's output goes. Default: /var/log/ha-framework/consul-INSTANCE.log.")),
	}
}

var actions = []ocf.Action{
	{Name: ocf.ActionStart, Timeout: 120 * time.Second},
	{Name: ocf.ActionStop, Timeout: 60 * time.Second},
	{Name: ocf.ActionMonitor, Timeout: 20 * time.Second, Interval: 10 * time.Second},
	{Name: ocf.ActionMonitor, Timeout: 30 * time.Second, Interval: 60 * time.Second, Depth: 10},
}

// paths are the agent's own files for one resource instance.
type paths struct{ config, pid string }

func pathsOf(r *request) paths {
	base := r.StatePath("")
	return paths{config: base + ".json", pid: base + ".pid"}
}

// runtime is what validate resolves for the other actions.
type runtime struct {
	binary string
	token  string
}

// validate runs before every action; what it resolves is kept in
// r.Config for the action, so a monitor reads the token file once.
func validate(ctx context.Context, r *request) error {
	rt, err := resolve(r)
	r.Config.rt = rt
	return err
}

// resolve checks the node-local parts of the configuration: the binary,
// the files parameters name, the token file's permissions.
func resolve(r *request) (runtime, error) {
	c := r.Config
	var rt runtime
	if c.Mode == "client" && c.BootstrapExp > 0 {
		return rt, ocf.Errorf(ocf.ErrConfigured, "parameter bootstrap_expect=%d applies to servers only; set mode=server or remove it", c.BootstrapExp)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return rt, ocf.Errorf(ocf.ErrConfigured, "parameters cert_file and key_file go together; set both or neither")
	}
	bin, err := r.LookPath(c.Binary, "binary")
	if err != nil {
		return rt, err
	}
	rt.binary = bin
	for _, f := range []struct{ param, path string }{
		{"config_dir", c.ConfigDir}, {"extra_config", c.ExtraConfig},
		{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if !filepath.IsAbs(f.path) {
			return rt, ocf.Errorf(ocf.ErrConfigured, "parameter %s=%q must be an absolute path", f.param, f.path)
		}
		if _, err := os.Stat(f.path); err != nil {
			return rt, ocf.Errorf(ocf.ErrArgs, "parameter %s: %s is missing on this node: %w", f.param, f.path, err)
		}
	}
	if c.TokenFile != "" {
		if rt.token, err = ocf.ReadSecretFile(c.TokenFile, "token_file"); err != nil {
			return rt, err
		}
	}
	return rt, nil
}

func (c *Config) client(ctx context.Context, rt runtime) (*api.Client, error) {
	return consulapi.New(ctx, consulapi.Options{
		Address: c.httpAddress(), Token: rt.token, CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
	}, 5*time.Second)
}

func start(ctx context.Context, r *request) error {
	rt, p := r.Config.rt, pathsOf(r)
	if st, _, _ := process.Status(p.pid, process.MatchExecutable(rt.binary)); st == process.Running {
		return waitReady(ctx, r, rt, p, 0)
	}
	if err := writeConfig(ctx, r, rt, p); err != nil {
		return err
	}
	if err := os.MkdirAll(r.Config.DataDir, 0o700); err != nil {
		return ocf.Errorf(ocf.ErrPerm, "creating data_dir %s: %w", r.Config.DataDir, err)
	}
	if err := setAsideBadNodeID(r); err != nil {
		return err
	}
	logFile := logFileOf(r)
	if err := os.MkdirAll(filepath.Dir(logFile), 0o750); err != nil {
		return ocf.Errorf(ocf.ErrPerm, "creating the directory of log_file %s: %w", logFile, err)
	}
	pid, err := process.StartDaemon(ctx, process.Daemon{
		Path: rt.binary, Args: agentArgs(r.Config, p), PIDFile: p.pid, LogFile: logFile,
	})
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "starting consul: %w", err)
	}
	r.Log.Info("consul started", "pid", pid, "mode", r.Config.Mode, "http", r.Config.httpAddress())
	return waitReady(ctx, r, rt, p, pid)
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
		return ocf.Errorf(ocf.ErrPerm, "reading %s: %w", path, err)
	}
	if validNodeID(strings.TrimSpace(string(data))) {
		return nil
	}
	aside := path + ".invalid"
	if err := os.Rename(path, aside); err != nil {
		return ocf.Errorf(ocf.ErrPerm, "setting aside the invalid %s: %w", path, err)
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

func agentArgs(c *Config, p paths) []string {
	args := []string{"agent", "-config-file=" + p.config}
	if c.ConfigDir != "" {
		args = append(args, "-config-dir="+c.ConfigDir)
	}
	if c.ExtraConfig != "" {
		args = append(args, "-config-file="+c.ExtraConfig)
	}
	return args
}

func logFileOf(r *request) string {
	if r.Config.LogFile != "" {
		return r.Config.LogFile
	}
	return filepath.Join("/var/log/ha-framework", "consul-"+strings.ReplaceAll(r.Env.Instance(), "/", "_")+".log")
}

// writeConfig renders the configuration and has consul validate it with
// the other files it will load, so a mistake is reported by start (and
// validate-all) in Consul's own words instead of by a crashing agent.
func writeConfig(ctx context.Context, r *request, rt runtime, p paths) error {
	data, err := r.Config.generated()
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "rendering configuration: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(p.config), 0o755); err != nil {
		return ocf.Errorf(ocf.ErrPerm, "creating state directory: %w", err)
	}
	tmp := p.config + ".new.json"
	if err := process.WriteFileAtomic(tmp, data, 0o600); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "writing configuration: %w", err)
	}
	defer os.Remove(tmp)
	args := []string{"validate", "-quiet", tmp}
	if r.Config.ConfigDir != "" {
		args = append(args, r.Config.ConfigDir)
	}
	if r.Config.ExtraConfig != "" {
		args = append(args, r.Config.ExtraConfig)
	}
	cmd := exec.CommandContext(ctx, rt.binary, args...)
	cmd.Env = []string{process.DefaultPath}
	if out, err := cmd.CombinedOutput(); err != nil {
		return validateRejected(r.Config, firstLine(out, err))
	}
	if err := os.Rename(tmp, p.config); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "installing configuration: %w", err)
	}
	return nil
}

// waitReady waits until the HTTP API answers and, for servers that wait
// for one, a leader is known. It fails at once, with the agent's last
// words, if the process exits.
func waitReady(ctx context.Context, r *request, rt runtime, p paths, pid int) error {
	wait := 100 * time.Millisecond
	var last error
	for {
		if pid > 0 {
			if alive, _ := process.Alive(pid); !alive {
				return ocf.Errorf(ocf.ErrGeneric, "consul exited during start: %s", tail(logFileOf(r)))
			}
		}
		last = ready(ctx, r, rt)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ocf.Errorf(ocf.ErrGeneric, "consul not ready before the start timeout: %v", last)
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
	}
}

func ready(ctx context.Context, r *request, rt runtime) error {
	c, err := r.Config.client(ctx, rt)
	if err != nil {
		return err
	}
	if _, err := c.Agent().Self(); err != nil {
		return fmt.Errorf("HTTP API at %s: %w", r.Config.httpAddress(), err)
	}
	if r.Config.server() && r.Config.WaitForLeader {
		leader, err := c.Status().Leader()
		if err != nil {
			return fmt.Errorf("asking for the leader: %w", err)
		}
		if leader == "" {
			return errors.New("no cluster leader yet (waiting for bootstrap_expect servers)")
		}
	}
	return nil
}

func monitor(ctx context.Context, r *request) (ocf.State, error) {
	rt, p := r.Config.rt, pathsOf(r)
	st, pid, err := process.Status(p.pid, process.MatchExecutable(rt.binary))
	switch {
	case err != nil:
		return ocf.Stopped, ocf.Errorf(ocf.ErrGeneric, "pid file %s: %w", p.pid, err)
	case st != process.Running:
		return ocf.Stopped, nil
	}
	c, err := r.Config.client(ctx, rt)
	if err != nil {
		return ocf.Running, err
	}
	self, err := c.Agent().Self()
	if err != nil {
		return ocf.Running, ocf.Errorf(ocf.ErrGeneric, "consul (pid %d) runs but its HTTP API at %s does not answer: %w", pid, r.Config.httpAddress(), err)
	}
	if r.CheckLevel() < 10 {
		return ocf.Running, nil
	}
	return ocf.Running, deepCheck(c, r, self)
}

// deepCheck reports cluster-level problems as degraded: restarting this
// agent would not give the cluster a leader, and would make things worse.
func deepCheck(c *api.Client, r *request, self map[string]map[string]any) error {
	leader, err := c.Status().Leader()
	if err != nil {
		return ocf.Errorf(ocf.Degraded, "cannot ask for the cluster leader: %v", err)
	}
	if leader == "" {
		return ocf.Errorf(ocf.Degraded, "the Consul cluster has no leader")
	}
	name, _ := self["Config"]["NodeName"].(string)
	if status, _ := self["Member"]["Status"].(float64); status != 1 {
		return ocf.Errorf(ocf.Degraded, "node %s is not an alive member of the cluster (serf status %v)", name, status)
	}
	if !r.Config.server() {
		return nil
	}
	health, err := c.Operator().AutopilotServerHealth(nil)
	if err != nil {
		if strings.Contains(err.Error(), "403") {
			r.Log.Debug("autopilot health not readable with this token", "err", err)
			return nil
		}
		return ocf.Errorf(ocf.Degraded, "autopilot health: %v", err)
	}
	if !health.Healthy {
		var bad []string
		for _, s := range health.Servers {
			if !s.Healthy {
				bad = append(bad, s.Name)
			}
		}
		return ocf.Errorf(ocf.Degraded, "raft peers unhealthy: %s (failure tolerance %d)", strings.Join(bad, ", "), health.FailureTolerance)
	}
	return nil
}

func stop(ctx context.Context, r *request) error {
	p := pathsOf(r)
	// Without a binary there is nothing to match the pid file against:
	// stop what the pid file names if it is alive.
	var match process.Matcher
	rt := r.Config.rt
	if rt.binary != "" {
		match = process.MatchExecutable(rt.binary)
	}
	st, pid, err := process.Status(p.pid, match)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "pid file %s: %w", p.pid, err)
	}
	if st != process.Running {
		_ = os.Remove(p.pid)
		return nil
	}
	if r.Config.leaves() && rt.binary != "" {
		if err := leave(ctx, r, rt); err != nil {
			r.Log.Warn("graceful leave failed; stopping anyway", "err", err)
		}
	}
	if err := process.Stop(ctx, pid, process.StopOptions{Signal: syscall.SIGTERM}); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "stopping consul (pid %d): %w", pid, err)
	}
	_ = os.Remove(p.pid)
	r.Log.Info("consul stopped", "pid", pid, "left", r.Config.leaves())
	return nil
}

func leave(ctx context.Context, r *request, rt runtime) error {
	// Leave within half the time left: the rest is for the signals.
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(d)/2))
		defer cancel()
	}
	c, err := r.Config.client(ctx, rt)
	if err != nil {
		return err
	}
	return c.Agent().Leave()
}

// reload applies reloadable parameters (log_level) with Consul's own
// reload (SIGHUP), after validating the new configuration.
func reload(ctx context.Context, r *request) error {
	rt, p := r.Config.rt, pathsOf(r)
	st, pid, err := process.Status(p.pid, process.MatchExecutable(rt.binary))
	if err != nil || st != process.Running {
		return ocf.Errorf(ocf.ErrGeneric, "reload-agent: consul is not running (pid file %s)", p.pid)
	}
	if err := writeConfig(ctx, r, rt, p); err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "reload-agent: signalling consul (pid %d): %w", pid, err)
	}
	r.Log.Info("consul reloaded", "pid", pid, "log_level", r.Config.LogLevel)
	return nil
}

// validateRejected is the error for a configuration that consul validate
// refused with the message why. What the parameters say holds on every
// node (ErrConfigured); the node's own files, or its addresses when
// bind_addr leaves the choice to Consul, hold on this node only (ErrArgs).
func validateRejected(c *Config, why string) error {
	if c.BindAddr == "" && c.AdvertiseAddr == "" && strings.Contains(why, "Multiple private IPv4 addresses") {
		// Kept short: Pacemaker shows 128 bytes of a reason.
		return ocf.Errorf(ocf.ErrArgs, "this node has several private IPv4 addresses; set bind_addr to the cluster one (an address or a go-sockaddr template)")
	}
	why = strings.TrimPrefix(why, "Config validation failed: ")
	if c.ConfigDir != "" || c.ExtraConfig != "" {
		// The node's own files may be what is wrong.
		return ocf.Errorf(ocf.ErrArgs, "fix config_dir, extra_config or the parameters; consul validate says: %s", why)
	}
	return ocf.Errorf(ocf.ErrConfigured, "fix the parameters; consul validate says: %s", why)
}

// firstLine gives a command's first meaningful output line for an exit
// reason.
func firstLine(out []byte, err error) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			return line
		}
	}
	return err.Error()
}

// tail returns the last non-empty line of the agent's log, which says why
// it exited.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || len(bytes.TrimSpace(data)) == 0 {
		return "no output (see " + path + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
