package consulagent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

func TestGeneratedConfig(t *testing.T) {
	c := Config{Mode: "server", Datacenter: "dc9", DataDir: "/var/lib/c", ClientAddr: "127.0.0.1", HTTPPort: 8500,
		ServerPort: 8300, SerfLANPort: 8301, SerfWANPort: 8302, DNSPort: -1, GRPCPort: -1, GRPCTLSPort: -1,
		BootstrapExp: 3, RaftMultiplier: 1, RetryJoin: []string{"10.0.0.2", "10.0.0.3"}, LogLevel: "warn", NodeName: "n1", BindAddr: "10.0.0.1"}
	data, err := c.generated(true)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"datacenter": "dc9", "data_dir": "/var/lib/c", "server": true, "client_addr": "127.0.0.1",
		"ports": map[string]any{"http": 8500.0, "server": 8300.0, "serf_lan": 8301.0, "serf_wan": 8302.0,
			"dns": -1.0, "grpc": -1.0, "grpc_tls": -1.0},
		"log_level": "warn", "leave_on_terminate": false, "skip_leave_on_interrupt": true,
		"disable_host_node_id": true, "rejoin_after_leave": true, "bootstrap_expect": 3.0,
		"performance": map[string]any{"raft_multiplier": 1.0},
		"node_name":   "n1", "bind_addr": "10.0.0.1", "retry_join": []any{"10.0.0.2", "10.0.0.3"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("generated config (-want +got):\n%s", diff)
	}
}

// TestServersList: with servers set, one clone's configuration is a
// server's on the nodes listed, expecting as many servers as listed and
// joining them, and a client's elsewhere, decided by the node name
// Pacemaker passes.
func TestServersList(t *testing.T) {
	for _, tt := range []struct {
		name, node string
		expect     bool
		wantServer bool
		wantExpect any
	}{
		{"listed node", "n2", false, true, 3.0},
		{"listed node, bootstrap_expect=2 given", "n2", true, true, 2.0},
		{"other node", "n4", false, false, nil},
		{"other node, bootstrap_expect=2 given", "n4", true, false, nil},
		{"name is a prefix of a listed one", "n", false, false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &Config{Servers: []string{"n1", "n2", "n3"}, DataDir: "/var/lib/consul"}
			if tt.expect {
				cfg.BootstrapExp = 2
			}
			env := ocf.NewEnv(func(k string) (string, bool) {
				return tt.node, k == "OCF_RESKEY_CRM_meta_on_node"
			})
			req := &ocf.Request[Config]{Config: cfg, Env: env}
			server, err := isServer(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if server != tt.wantServer {
				t.Errorf("node %s: server = %v, want %v", tt.node, server, tt.wantServer)
			}
			data, err := cfg.generated(server)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			if got["server"] != tt.wantServer || got["bootstrap_expect"] != tt.wantExpect {
				t.Errorf("server %v bootstrap_expect %v, want %v %v", got["server"], got["bootstrap_expect"], tt.wantServer, tt.wantExpect)
			}
			if diff := cmp.Diff([]any{"n1", "n2", "n3"}, got["retry_join"]); diff != "" {
				t.Errorf("retry_join (-want +got):\n%s", diff)
			}
			if cfg.leaves(server) == server {
				t.Errorf("node %s: leaves on stop = %v; servers stay, clients leave", tt.node, cfg.leaves(server))
			}
		})
	}
}

func TestLeavePolicy(t *testing.T) {
	for _, tt := range []struct {
		server bool
		policy string
		want   bool
	}{
		{false, "auto", true}, {true, "auto", false},
		{true, "true", true}, {false, "false", false},
	} {
		c := Config{LeaveOnStop: tt.policy}
		if got := c.leaves(tt.server); got != tt.want {
			t.Errorf("server %v leave_on_stop %s: leaves = %v, want %v", tt.server, tt.policy, got, tt.want)
		}
	}
}

// The messages are consul validate's own (Consul 1.20), on a node with a
// management and a cluster network.
func TestValidateRejected(t *testing.T) {
	const multiple = "Config validation failed: Multiple private IPv4 addresses found. Please configure one with 'bind' and/or 'advertise'."
	const badPort = "Config validation failed: ports.http must be a valid port"
	const badPortWhy = "ports.http must be a valid port"
	for _, tt := range []struct {
		name       string
		c          Config
		why        string
		wantCode   ocf.Code
		wantReason string
	}{
		{"several addresses, bind_addr unset", Config{}, multiple, ocf.InvalidArgs, "set bind_addr to the cluster one"},
		{"several addresses, bind_addr set", Config{BindAddr: "{{ GetPrivateIP }}"}, multiple, ocf.Misconfigured, "fix the parameters; consul validate says: Multiple private IPv4 addresses found"},
		{"parameters", Config{}, badPort, ocf.Misconfigured, "fix the parameters; consul validate says: " + badPortWhy},
		{"node's own files", Config{ExtraConfig: "/etc/consul.d/x.hcl"}, badPort, ocf.InvalidArgs, "fix config_dir, extra_config or the parameters; consul validate says: " + badPortWhy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := validateRejected(&tt.c, tt.why)
			if got := ocf.CodeOf(err); got != tt.wantCode {
				t.Errorf("code %v, want %v", got, tt.wantCode)
			}
			reason := ocf.ReasonOf(err)
			if !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason %q, want it to contain %q", reason, tt.wantReason)
			}
			if len(reason) > ocf.MaxReason {
				t.Errorf("reason is %d bytes; Pacemaker shows 128", len(reason))
			}
		})
	}
}

func TestHTTPAddress(t *testing.T) {
	for client, want := range map[string]string{"": "127.0.0.1:8500", "0.0.0.0": "127.0.0.1:8500", "::": "127.0.0.1:8500", "10.1.1.1": "10.1.1.1:8500", "::1": "[::1]:8500"} {
		c := Config{ClientAddr: client, HTTPPort: 8500}
		if got := c.httpAddress(); got != want {
			t.Errorf("client_addr %q: %s, want %s", client, got, want)
		}
	}
}

// TestBadInput checks the exit codes and reasons for what an
// administrator can get wrong, in probe, start and validate context.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	fakeBin := filepath.Join(dir, "consul")
	if err := os.WriteFile(fakeBin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	openToken := filepath.Join(dir, "open.token")
	if err := os.WriteFile(openToken, []byte("secret-value"), 0o644); err != nil {
		t.Fatal(err)
	}
	probe := map[string]string{"OCF_RESKEY_CRM_meta_interval": ""}
	recurring := map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}
	onNode := map[string]string{"OCF_RESKEY_CRM_meta_on_node": "n4"}
	tests := []struct {
		name   string
		params map[string]string
		action string
		extra  map[string]string
		want   ocf.Code
		reason string
	}{
		{"binary missing: validate", map[string]string{"binary": "/nonexistent/consul"}, "validate-all", nil, ocf.NotInstalled, "set parameter binary or install /nonexistent/consul: not found"},
		{"binary missing: probe", map[string]string{"binary": "/nonexistent/consul"}, "monitor", probe, ocf.NotRunning, ""},
		{"binary missing: recurring monitor", map[string]string{"binary": "/nonexistent/consul"}, "monitor", recurring, ocf.NotInstalled, "set parameter binary"},
		{"binary missing: stop", map[string]string{"binary": "/nonexistent/consul"}, "stop", nil, ocf.Success, ""},
		{"bad mode", map[string]string{"binary": fakeBin, "mode": "leader"}, "validate-all", nil, ocf.Misconfigured, "not one of server, client"},
		{"bad port", map[string]string{"binary": fakeBin, "http_port": "0"}, "start", nil, ocf.Misconfigured, "http_port"},
		{"relative data_dir", map[string]string{"binary": fakeBin, "data_dir": "data"}, "validate-all", nil, ocf.Misconfigured, "must be an absolute path"},
		{"bootstrap_expect on a client", map[string]string{"binary": fakeBin, "bootstrap_expect": "3"}, "validate-all", nil, ocf.Misconfigured, "applies to servers only"},
		{"servers and mode", map[string]string{"binary": fakeBin, "servers": "n1 n2 n3", "mode": "server"}, "validate-all", nil, ocf.Misconfigured, "remove mode or servers"},
		{"bootstrap_expect above servers", map[string]string{"binary": fakeBin, "servers": "n1 n2 n3", "bootstrap_expect": "4"}, "validate-all", onNode, ocf.Misconfigured, "bootstrap_expect=4 exceeds the 3 nodes in servers"},
		{"servers with bootstrap_expect on a client node", map[string]string{"binary": fakeBin, "servers": "n1 n2 n3", "bootstrap_expect": "3"}, "validate-all", onNode, ocf.Success, ""},
		{"cert without key", map[string]string{"binary": fakeBin, "cert_file": fakeBin}, "validate-all", nil, ocf.Misconfigured, "set both cert_file and key_file"},
		{"config_dir missing", map[string]string{"binary": fakeBin, "config_dir": "/nonexistent/consul.d"}, "start", nil, ocf.InvalidArgs, "config_dir"},
		{"config_dir missing: probe", map[string]string{"binary": fakeBin, "config_dir": "/nonexistent/consul.d"}, "monitor", probe, ocf.NotRunning, ""},
		{"token file missing", map[string]string{"binary": fakeBin, "token_file": "/nonexistent/token"}, "start", nil, ocf.InvalidArgs, "token_file file /nonexistent/token does not exist"},
		{"token file too open", map[string]string{"binary": fakeBin, "token_file": openToken}, "validate-all", nil, ocf.InvalidArgs, "chmod 600"},
		{"token file too open: probe", map[string]string{"binary": fakeBin, "token_file": openToken}, "monitor", probe, ocf.NotRunning, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "consul", Params: tt.params})
			got := r.Run(tt.action, tt.extra)
			// A row without reason text asserts there is none: a success or a
			// clean "not running" writes no exit reason; a failure must name one.
			if tt.reason == "" && (got.Reason != "" || (tt.want != ocf.Success && tt.want != ocf.NotRunning)) {
				t.Errorf("%s = %v %q: a row expecting %v must name its reason, or expect none", tt.action, got.Code, got.Reason, tt.want)
			}
			if got.Code != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("%s = %v %q, want %v with %q", tt.action, got.Code, got.Reason, tt.want, tt.reason)
			}
			if strings.Contains(got.Stderr, "secret-value") {
				t.Errorf("the token leaked into the output: %s", got.Stderr)
			}
		})
	}
}

func TestValidNodeID(t *testing.T) {
	for s, want := range map[string]bool{
		"ecb4fc5b-4b92-0b72-c3c1-9d7fc277af5f": true,
		"ECB4FC5B-4B92-0B72-C3C1-9D7FC277AF5F": true,
		strings.Repeat("\x00", 36):             false, // zero-filled by a power loss
		"":                                     false,
		"ecb4fc5b-4b92-0b72-c3c1-9d7fc277af5":  false,
		"ecb4fc5b-4b92-0b72-c3c1x9d7fc277af5f": false,
		"gcb4fc5b-4b92-0b72-c3c1-9d7fc277af5f": false,
	} {
		if got := validNodeID(s); got != want {
			t.Errorf("validNodeID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestUnhealthyPeers(t *testing.T) {
	now := time.Date(2026, 12, 4, 4, 0, 0, 0, time.UTC)
	h := &api.OperatorHealthReply{Servers: []api.ServerHealth{
		{Name: "s1", Healthy: true, StableSince: now.Add(-time.Hour)},
		{Name: "s2", Healthy: false, StableSince: now.Add(-40 * time.Second)},
		{Name: "s3", Healthy: false, StableSince: now.Add(-5 * time.Second)},
		{Name: "s4", Healthy: false},                                          // no time: reported
		{Name: "s5", Healthy: false, StableSince: now.Add(time.Second)},       // the leader's clock ahead: not yet
		{Name: "s6", Healthy: false, StableSince: now.Add(-30 * time.Second)}, // exactly the grace: reported
	}}
	for _, c := range []struct {
		after       time.Duration
		bad, recent []string
	}{
		{30 * time.Second, []string{"s2", "s4", "s6"}, []string{"s3", "s5"}},
		{0, []string{"s2", "s3", "s4", "s6"}, []string{"s5"}},
		{time.Minute, []string{"s4"}, []string{"s2", "s3", "s5", "s6"}},
	} {
		bad, recent := unhealthyPeers(h, now, c.after)
		if !slices.Equal(bad, c.bad) || !slices.Equal(recent, c.recent) {
			t.Errorf("after %v: bad %v recent %v, want %v and %v", c.after, bad, recent, c.bad, c.recent)
		}
	}
	if bad, recent := unhealthyPeers(&api.OperatorHealthReply{Healthy: true}, now, 0); bad != nil || recent != nil {
		t.Errorf("no servers: %v %v", bad, recent)
	}
}
