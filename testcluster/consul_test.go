//go:build integration

package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/consul/consulagent"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// consulServer returns the parameters of one Consul server of a loopback
// cluster of `expect` servers: free ports, its own data directory, and
// Raft timing for production (raft_multiplier 1) from an extra file.
func consulServer(t testing.TB, name string, expect int, join []string) (map[string]string, string) {
	t.Helper()
	dir := t.TempDir()
	extra := filepath.Join(dir, "extra.hcl")
	if err := os.WriteFile(extra, []byte("performance { raft_multiplier = 1 }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ports := consultest.FreePorts(t, 4)
	params := map[string]string{
		"binary": consultest.Binary(t), "mode": "server", "node_name": name,
		"data_dir": filepath.Join(dir, "data"), "bind_addr": "127.0.0.1", "client_addr": "127.0.0.1",
		"http_port": strconv.Itoa(ports[0]), "server_port": strconv.Itoa(ports[1]),
		"serf_lan_port": strconv.Itoa(ports[2]), "serf_wan_port": strconv.Itoa(ports[3]),
		"dns_port": "-1", "bootstrap_expect": strconv.Itoa(expect), "extra_config": extra,
		"log_file": filepath.Join(dir, "consul.log"),
	}
	if len(join) > 0 {
		params["retry_join"] = strings.Join(join, ",")
	}
	return params, "127.0.0.1:" + strconv.Itoa(ports[2])
}

var (
	recurring = map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}
	deep      = map[string]string{"OCF_RESKEY_CRM_meta_interval": "60000", "OCF_CHECK_LEVEL": "10"}
)

// TestConsulConformance runs the ocf-tester sequence in-process against a
// real single-server Consul.
func TestConsulConformance(t *testing.T) {
	params, _ := consulServer(t, "conformance", 1, nil)
	ocftest.Conformance(t, consulagent.New(), ocftest.Config{Name: "consul", Params: params,
		Env: map[string]string{"OCF_RESKEY_CRM_meta_timeout": "60000"}})
}

// TestConsulOCFTester runs the real ocf-tester on the installed agent.
func TestConsulOCFTester(t *testing.T) {
	params, _ := consulServer(t, "ocftester", 1, nil)
	ocfTester(t, "consul", params, map[string]string{"HA_RSCTMP": t.TempDir()})
}

// TestConsulThreeServers starts a 3-server cluster with the agent, stops
// one server, and checks the survivors keep a leader and a passing
// monitor while the stopped one reports "not running".
func TestConsulThreeServers(t *testing.T) {
	names := []string{"s1", "s2", "s3"}
	params := make([]map[string]string, 3)
	serf := make([]string, 3)
	for i, n := range names {
		params[i], serf[i] = consulServer(t, n, 3, nil)
		// Autopilot would remove the stopped server from the raft
		// peers seconds after calling it unhealthy: kept, so that the
		// deep monitors' answer to an unhealthy peer can be seen.
		if err := os.WriteFile(params[i]["extra_config"], []byte("performance { raft_multiplier = 1 }\nautopilot { cleanup_dead_servers = false }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runners := make([]*ocftest.Runner, 3)
	state := t.TempDir()
	for i := range params {
		var join []string
		for j := range serf {
			if j != i {
				join = append(join, serf[j])
			}
		}
		params[i]["retry_join"] = strings.Join(join, ",")
		runners[i] = ocftest.NewRunner(t, consulagent.New(), ocftest.Config{Name: "consul", Params: params[i],
			Env: map[string]string{"OCF_RESKEY_CRM_meta_timeout": "90000", "OCF_RESOURCE_INSTANCE": "consul:" + strconv.Itoa(i), "HA_RSCTMP": state}})
	}
	t.Cleanup(func() {
		for _, r := range runners {
			r.Run("stop", nil)
		}
	})

	// Start returns without a leader (wait_for_leader=false): start them
	// one after another, as Pacemaker does when it throttles under load.
	// The first leader comes only once all three run.
	began := time.Now()
	for i, r := range runners {
		if res := r.Run("start", nil); res.Code != ocf.Success {
			t.Fatalf("start %s one after another: %v %q", names[i], res.Code, res.Reason)
		}
	}
	t.Logf("3 servers started one after another in %v", time.Since(began).Round(time.Millisecond))
	for i, r := range runners {
		// Autopilot calls servers healthy once they have been stable a
		// moment; until then depth 10 says degraded.
		waitFor(t, 30*time.Second, "deep monitor of "+names[i]+" passes", func() (bool, string) {
			got := r.Run("monitor", deep)
			return got.Code == ocf.Success, got.Code.String() + " " + got.Reason
		})
	}
	t.Logf("consul server RSS with the agent's defaults: %s", rss(readPID(t, filepath.Join(state, "consul-consul:0.pid"))))

	if got := runners[2].Run("stop", nil); got.Code != ocf.Success {
		t.Fatalf("stop s3: %v %q", got.Code, got.Reason)
	}
	if got := runners[2].Run("monitor", recurring); got.Code != ocf.NotRunning {
		t.Errorf("monitor of the stopped server: %v, want not running", got.Code)
	}
	for i := range 2 {
		if got := runners[i].Run("monitor", recurring); got.Code != ocf.Success {
			t.Errorf("monitor %s after s3 stopped: %v %q", names[i], got.Code, got.Reason)
		}
	}
	// Autopilot calls s3 unhealthy within a second or two. The survivors'
	// deep monitors keep succeeding for peers_degraded_after, so that a
	// node loss does not change their result in the middle of a failover,
	// then report degraded, never a failure that would restart them.
	const grace = 20 * time.Second
	withGrace := map[string]string{"OCF_RESKEY_peers_degraded_after": grace.String()}
	maps.Copy(withGrace, deep)
	ap, err := api.NewClient(&api.Config{Address: "127.0.0.1:" + params[0]["http_port"]})
	if err != nil {
		t.Fatal(err)
	}
	var since time.Time
	waitFor(t, 30*time.Second, "autopilot calls s3 unhealthy", func() (bool, string) {
		h, err := ap.Operator().AutopilotServerHealth(nil)
		if err != nil {
			return false, err.Error()
		}
		for _, srv := range h.Servers {
			if srv.Name == "s3" && !srv.Healthy {
				since = srv.StableSince
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", h.Servers)
	})
	// StableSince lags: autopilot refreshes what the API shows every few
	// seconds.
	t.Logf("autopilot: s3 unhealthy since %v ago", time.Since(since).Round(time.Millisecond))
	for i := range 2 {
		got := runners[i].Run("monitor", withGrace)
		if left := grace - time.Since(since); left < time.Second {
			t.Logf("deep monitor of %s not checked within peers_degraded_after: too late (%v left)", names[i], left)
		} else if got.Code != ocf.Success {
			t.Errorf("deep monitor of %s with s3 unhealthy for %v, under peers_degraded_after=%v: %v %q, want success",
				names[i], time.Since(since).Round(time.Millisecond), grace, got.Code, got.Reason)
		}
	}
	for i := range 2 {
		waitFor(t, grace+30*time.Second, "deep monitor of "+names[i]+" reports s3 after peers_degraded_after", func() (bool, string) {
			got := runners[i].Run("monitor", withGrace)
			return got.Code == ocf.Degraded && strings.Contains(got.Reason, "s3"), got.Code.String() + " " + got.Reason
		})
	}
}

// rss reads a process's resident memory from /proc.
func rss(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// TestConsulOnPacemaker creates the agent with pcs, kills Consul with
// SIGKILL and checks Pacemaker restarts it.
func TestConsulOnPacemaker(t *testing.T) {
	requireCluster(t)
	id := uniqueID(t, "hafw-consul")
	params, _ := consulServer(t, id, 1, nil)
	args := []string{"resource", "create", id, "ocf:ha-framework:consul"}
	for k, v := range params {
		args = append(args, k+"="+v)
	}
	args = append(args, "op", "monitor", "interval=2s", "timeout=20s", "op", "start", "timeout=60s", "--wait=90")
	pcs(t, args...)
	t.Cleanup(func() { deleteResource(t, id) })
	waitFor(t, 90*time.Second, "consul started", func() (bool, string) { r := role(t, id); return r == "Started", r })

	pidfile := filepath.Join("/run/resource-agents", "consul-"+id+".pid")
	before := readPID(t, pidfile)
	if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, "Pacemaker restarts consul", func() (bool, string) {
		now, _ := os.ReadFile(pidfile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(now)))
		return pid != 0 && pid != before && role(t, id) == "Started" && failCount(t, id) > 0,
			fmt.Sprintf("pid %d (was %d), role %s, failcount %d", pid, before, role(t, id), failCount(t, id))
	})
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestConsulCrmshScript deploys the agent as a clone with its crmsh
// cluster script.
func TestConsulCrmshScript(t *testing.T) {
	requireCluster(t)
	id := uniqueID(t, "hafw-crmconsul")
	params, _ := consulServer(t, id, 1, nil)
	args := []string{"script", "run", "ha-framework-consul", "id=" + id}
	for k, v := range params {
		args = append(args, k+"="+v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "crm", args...)
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crm script run: %v\n%s", err, out)
	}
	t.Cleanup(func() { deleteResource(t, id+"-clone") })
	waitFor(t, 90*time.Second, "clone started", func() (bool, string) { r := role(t, id); return r == "Started", r })
}

// TestConsulTokenStaysSecret runs Consul with ACLs on (default deny) and
// the agent's token in token_file: the agent's API calls work with it and
// fail without it, and the token never shows in any process's argv or
// environment, in the agent's output or logs, or in a file the agent
// wrote with a mode wider than 0600.
func TestConsulTokenStaysSecret(t *testing.T) {
	const token = "6f1f0e0a-5a7e-4c8e-9d1b-2c3d4e5f6a7b"
	params, _ := consulServer(t, "acl", 1, nil)
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl.hcl")
	aclConfig := `acl { enabled = true
  default_policy = "deny"
  tokens { initial_management = "` + token + `"
    agent = "` + token + `" } }
performance { raft_multiplier = 1 }
`
	if err := os.WriteFile(acl, []byte(aclConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	params["extra_config"] = acl
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	params["token_file"] = tokenFile
	state := t.TempDir()
	env := map[string]string{"OCF_RESKEY_CRM_meta_timeout": "60000", "HA_RSCTMP": state,
		"HA_LOGFILE": filepath.Join(dir, "ha.log"), "HA_debug": "1", "OCF_TRACE_RA": "1", "OCF_TRACE_FILE": filepath.Join(dir, "trace")}
	r := ocftest.NewRunner(t, consulagent.New(), ocftest.Config{Name: "consul", Params: params, Env: env})
	t.Cleanup(func() { r.Run("stop", nil) })
	var results []ocftest.Result
	for _, action := range []string{"start", "monitor"} {
		got := r.Run(action, deep)
		results = append(results, got)
		// Autopilot may still call a server that just won its election
		// unhealthy: degraded, which is fine here.
		if got.Code != ocf.Success && got.Code != ocf.Degraded {
			t.Fatalf("%s with the token: %v %q", action, got.Code, got.Reason)
		}
	}
	without := r.Run("monitor", map[string]string{"OCF_RESKEY_token_file": "", "OCF_RESKEY_CRM_meta_interval": "10000"})
	if without.Code != ocf.GenericFailure || !strings.Contains(without.Reason, "HTTP API") {
		t.Errorf("monitor without the token: %v %q, want a failure from the HTTP API (ACL denies)", without.Code, without.Reason)
	}
	for _, where := range ocftest.SecretExposures(token, results,
		[]string{filepath.Join(dir, "ha.log"), filepath.Join(dir, "trace"), params["log_file"]}, []string{state}) {
		t.Errorf("the token shows in %s", where)
	}
}

// A node that lost power right after Consul wrote data_dir/node-id can find
// it zero-filled (seen on the VM test cluster), and Consul then refuses to
// start. The agent sets the file aside and Consul makes a new ID.
func TestConsulStartsAfterZeroFilledNodeID(t *testing.T) {
	params, _ := consulServer(t, "zeroed", 1, nil)
	nodeID := filepath.Join(params["data_dir"], "node-id")
	if err := os.MkdirAll(params["data_dir"], 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nodeID, make([]byte, 36), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ocftest.NewRunner(t, consulagent.New(), ocftest.Config{Name: "consul", Params: params,
		Env: map[string]string{"OCF_RESKEY_CRM_meta_timeout": "60000", "HA_RSCTMP": t.TempDir()}})
	t.Cleanup(func() { r.Run("stop", nil) })
	if got := r.Run("start", nil); got.Code != ocf.Success {
		t.Fatalf("start with a zero-filled node-id: %v %q", got.Code, got.Reason)
	}
	if kept, err := os.ReadFile(nodeID + ".invalid"); err != nil || len(kept) != 36 {
		t.Errorf("the invalid node-id was not kept aside: %v (%d bytes)", err, len(kept))
	}
	id, err := os.ReadFile(nodeID)
	if err != nil {
		t.Fatalf("Consul wrote no new node-id: %v", err)
	}
	if strings.Trim(string(id), "\x00") == "" {
		t.Errorf("node-id is still zero-filled")
	}
}

// A probe finds a Consul whose binary and extra configuration file have
// been removed (a package removed, a file moved by mistake), and stop ends
// it: a probe that answered "not running" would let Pacemaker start the
// resource a second time elsewhere. A start whose Consul exits at once (its
// HTTP port taken) fails at once with Consul's own words.
func TestConsulProbeAfterBinaryRemoved(t *testing.T) {
	params, _ := consulServer(t, "removed", 1, nil)
	data, err := os.ReadFile(params["binary"])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "consul")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	params["binary"] = bin
	r := ocftest.NewRunner(t, consulagent.New(), ocftest.Config{Name: "consul", Params: params,
		Env: map[string]string{"OCF_RESKEY_CRM_meta_timeout": "60000", "HA_RSCTMP": t.TempDir()}})
	t.Cleanup(func() { r.Run("stop", nil) })
	if got := r.Run("start", nil); got.Code != ocf.Success {
		t.Fatalf("start: %v %q", got.Code, got.Reason)
	}
	for _, f := range []string{bin, params["extra_config"]} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.Run("monitor", nil); got.Code != ocf.Success {
		t.Errorf("probe of a running Consul without its binary = %v %q, want running", got.Code, got.Reason)
	}
	if got := r.Run("stop", nil); got.Code != ocf.Success {
		t.Errorf("stop = %v %q", got.Code, got.Reason)
	}
	if got := r.Run("monitor", nil); got.Code != ocf.NotRunning {
		t.Errorf("probe after stop = %v %q, want not running", got.Code, got.Reason)
	}
}

func TestConsulStartFailsFastOnTakenPort(t *testing.T) {
	params, _ := consulServer(t, "taken", 1, nil)
	l, err := net.Listen("tcp", "127.0.0.1:"+params["http_port"])
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := ocftest.NewRunner(t, consulagent.New(), ocftest.Config{Name: "consul", Params: params,
		Env: map[string]string{"OCF_RESKEY_CRM_meta_timeout": "120000", "HA_RSCTMP": t.TempDir()}})
	t.Cleanup(func() { r.Run("stop", nil) })
	begin := time.Now()
	got := r.Run("start", nil)
	t.Logf("start failed after %v: %q", time.Since(begin), got.Reason)
	if got.Code != ocf.GenericFailure || !strings.HasPrefix(got.Reason, "consul exited at start: ") || !strings.Contains(got.Reason, "address already in use") {
		t.Errorf("start with the HTTP port taken = %v %q, want a failure quoting Consul", got.Code, got.Reason)
	}
	if len(got.Reason) > ocf.MaxReason {
		t.Errorf("reason is %d bytes", len(got.Reason))
	}
}

// TestConsulServersList: one set of parameters with servers="a" (a
// clone's) runs a server on node a and a client on node b, told apart by
// the node name Pacemaker passes; the client leaves the cluster on stop,
// the server does not.
func TestConsulServersList(t *testing.T) {
	state := t.TempDir()
	var runners []*ocftest.Runner
	var https []string
	var serfA string
	for _, node := range []string{"a", "b"} {
		params, serf := consulServer(t, node, 0, nil)
		delete(params, "mode")
		delete(params, "bootstrap_expect")
		params["servers"] = "a"
		if node == "a" {
			serfA = serf
		} else {
			params["retry_join"] = serfA // the node name "a" resolves to nothing here
		}
		https = append(https, "http://127.0.0.1:"+params["http_port"])
		r := ocftest.NewRunner(t, consulagent.New(), ocftest.Config{Name: "consul", Params: params,
			Env: map[string]string{"OCF_RESKEY_CRM_meta_timeout": "90000", "OCF_RESKEY_CRM_meta_on_node": node,
				"OCF_RESOURCE_INSTANCE": "consul:" + node, "HA_RSCTMP": state}})
		t.Cleanup(func() { r.Run("stop", nil) })
		if got := r.Run("start", nil); got.Code != ocf.Success {
			t.Fatalf("start on node %s: %v %q", node, got.Code, got.Reason)
		}
		runners = append(runners, r)
	}
	for i, want := range []bool{true, false} {
		var self struct{ Config struct{ Server bool } }
		if err := getJSON(https[i]+"/v1/agent/self", &self); err != nil {
			t.Fatal(err)
		}
		if self.Config.Server != want {
			t.Errorf("agent on node %s: server = %v, want %v", []string{"a", "b"}[i], self.Config.Server, want)
		}
	}
	// The client joined the server (retry_join), then leaves on stop.
	memberStatus := func(name string) (float64, string) {
		var members []struct {
			Name   string
			Status float64
		}
		if err := getJSON(https[0]+"/v1/agent/members", &members); err != nil {
			return -1, err.Error()
		}
		for _, m := range members {
			if m.Name == name {
				return m.Status, fmt.Sprint(members)
			}
		}
		return -1, fmt.Sprint(members)
	}
	waitFor(t, 30*time.Second, "b a member of a's cluster", func() (bool, string) {
		s, why := memberStatus("b")
		return s == 1, why
	})
	if got := runners[1].Run("stop", nil); got.Code != ocf.Success {
		t.Fatalf("stop b: %v %q", got.Code, got.Reason)
	}
	waitFor(t, 30*time.Second, "b left (serf status 3)", func() (bool, string) {
		s, why := memberStatus("b")
		return s == 3, why
	})
}

// getJSON decodes the answer of a GET of url into v.
func getJSON(url string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
