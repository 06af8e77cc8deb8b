package consulagent

import (
	"encoding/json"
	"net"
	"strconv"
	"time"
)

// Config is the decoded instance parameters.
type Config struct {
	Binary         string
	ConfigDir      string
	ExtraConfig    string
	Mode           string
	Servers        []string
	Datacenter     string
	NodeName       string
	DataDir        string
	BindAddr       string
	AdvertiseAddr  string
	ClientAddr     string
	HTTPPort       int
	ServerPort     int
	SerfLANPort    int
	SerfWANPort    int
	DNSPort        int
	GRPCPort       int
	GRPCTLSPort    int
	BootstrapExp   int
	RaftMultiplier int
	RetryJoin      []string
	TokenFile      string
	CAFile         string
	CertFile       string
	KeyFile        string
	LeaveOnStop    string
	WaitForLeader  bool
	LogLevel       string
	LogFile        string
	// PeersDegradedAfter is how long a raft peer must have been
	// unhealthy before the depth-10 monitor reports it.
	PeersDegradedAfter time.Duration
}

// leaves reports whether stop makes the agent leave the cluster, server
// saying whether it runs a server (isServer). Clients
// leave by default; servers do not, because a server that leaves shrinks
// the quorum and does not rejoin from its snapshot.
func (c *Config) leaves(server bool) bool {
	switch c.LeaveOnStop {
	case "true":
		return true
	case "false":
		return false
	}
	return !server
}

// httpAddress is where this agent's HTTP API answers for local callers.
func (c *Config) httpAddress() string {
	host := c.ClientAddr
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(c.HTTPPort))
}

// generated renders the agent configuration the parameters describe, in
// Consul's JSON format, for a server or a client as server says
// (isServer). Leaving is switched off in Consul itself
// (leave_on_terminate false, skip_leave_on_interrupt true) because stop
// decides, per leave_on_stop, and does it through the API before the
// signal, so the outcome never depends on which signal arrives.
func (c *Config) generated(server bool) ([]byte, error) {
	ports := map[string]int{
		"http": c.HTTPPort, "server": c.ServerPort, "serf_lan": c.SerfLANPort,
		"serf_wan": c.SerfWANPort, "dns": c.DNSPort, "grpc": c.GRPCPort, "grpc_tls": c.GRPCTLSPort,
	}
	cfg := map[string]any{
		"datacenter":              c.Datacenter,
		"data_dir":                c.DataDir,
		"server":                  server,
		"client_addr":             c.ClientAddr,
		"ports":                   ports,
		"log_level":               c.LogLevel,
		"leave_on_terminate":      false,
		"skip_leave_on_interrupt": true,
		// Several agents on one host (tests, or a client beside a
		// server) must not collide on an ID derived from the host.
		"disable_host_node_id": true,
	}
	if server {
		// A server that stopped without leaving rejoins its peers.
		cfg["rejoin_after_leave"] = true
		if c.BootstrapExp > 0 {
			cfg["bootstrap_expect"] = c.BootstrapExp
		} else if len(c.Servers) > 0 {
			cfg["bootstrap_expect"] = len(c.Servers)
		}
		cfg["performance"] = map[string]any{"raft_multiplier": c.RaftMultiplier}
	}
	set := map[string]string{"node_name": c.NodeName, "bind_addr": c.BindAddr, "advertise_addr": c.AdvertiseAddr}
	for k, v := range set {
		if v != "" {
			cfg[k] = v
		}
	}
	if len(c.RetryJoin) > 0 {
		cfg["retry_join"] = c.RetryJoin
	} else if len(c.Servers) > 0 {
		cfg["retry_join"] = c.Servers
	}
	if c.CAFile != "" || c.CertFile != "" {
		cfg["tls"] = map[string]any{"defaults": map[string]any{
			"ca_file": c.CAFile, "cert_file": c.CertFile, "key_file": c.KeyFile, "verify_outgoing": c.CAFile != "",
		}}
	}
	return json.MarshalIndent(cfg, "", "  ")
}
