//go:build e2e

// The stack's agents on a pacemaker_remote node, unchanged: the 3 full
// nodes run the Consul servers, the remote node a Consul client, the
// service web with its directory-registration, and haproxy-dynamic (as
// every node does). The remote node's hostname is not its Pacemaker name,
// so an agent that took one for the other shows. The SDK's live tests of
// node attributes and promotion scores (ocf/cluster) run there too, through
// the tools Pacemaker proxies to the cluster, and the example agent as a
// promotable clone is promoted there by the score it sets.
//
// About 2 minutes on a quiet machine (107 s), 3.5 to 4.5 under a load of 20
// to 30 (203 s, 258 s), a fifth to a half of it bringing the cluster up;
// part of make e2e.
//
//	testcluster/dockercluster/run-e2e.sh -run '^TestRemoteNode$' -v
package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

const (
	clientID       = "consul-client" // primitive of the clone consul-client-clone
	clusterTests   = "/hafw/cluster.test"
	promotableID   = "prom" // example agent, promotable clone prom-clone
	remoteScore    = "37"   // its promotion_score
	remotePassWait = time.Minute
)

func TestRemoteNode(t *testing.T) {
	if os.Getenv("HAFW_E2E_REMOTE") != "1" {
		t.Skip("own image, built cold in minutes: set HAFW_E2E_REMOTE=1 (make e2e-remote)")
	}
	start := time.Now()
	c := up(t, &harness.Options{RemoteNodes: 1, Files: map[string]string{
		consulBinary(t):      consulInNode,
		clusterTestBinary(t): clusterTests,
	}})
	remote, n0 := c.Remotes[0], c.Nodes[0]
	t.Logf("timing: %d full nodes and remote node %s up and online in %s", len(c.Nodes), remote, time.Since(start).Round(100*time.Millisecond))
	host, err := c.Exec(remote, "hostname")
	if err != nil || host == "" || host == remote {
		t.Fatalf("remote node %s: hostname %q (%v); the test needs one that differs from the node name", remote, host, err)
	}
	// An agent run outside Pacemaker (crm_resource --force-*) gets no node
	// name and would ask crm_node -n, which Debian's remote nodes lack.
	out, _ := c.Exec(remote, "sh", "-c", "command -v crm_node || echo none")
	t.Logf("remote node %s, hostname %s, crm_node: %s", remote, host, out)

	createConsulClone(t, c)
	createConsulClients(t, c)

	// The SDK's node attributes and promotion scores through the remote
	// node's proxied tools, with the node's name given as Pacemaker gives
	// it to every action.
	step := time.Now()
	if out, err := c.Exec(remote, "env", "OCF_RESKEY_CRM_meta_on_node="+remote, clusterTests,
		"-test.run", "^(TestLocalNodeLive|TestAttributesLive|TestPromotionScoreLive)$", "-test.v", "-test.count=1"); err != nil {
		t.Errorf("ocf/cluster's live tests on %s: %v", remote, err)
	} else {
		if strings.Contains(out, "--- SKIP") || !strings.Contains(out, "--- PASS: TestAttributesLive") {
			t.Errorf("ocf/cluster's live tests on %s did not run:\n%s", remote, out)
		}
		t.Logf("timing: ocf/cluster's live tests passed on %s in %s", remote, time.Since(step).Round(100*time.Millisecond))
	}

	// web and its registration on the remote node, the proxies on every node.
	step = time.Now()
	if out, err := c.Exec(remote, "sh", "-c", "cat > "+webCfg+" <<'EOF'\n"+webConfig(webPort)+"EOF\nhaproxy -c -f "+webCfg); err != nil {
		t.Fatalf("%s: writing %s: %v\n%s", remote, webCfg, err, out)
	}
	for _, args := range [][]string{
		// Disabled until placed: web's configuration is on the remote node only.
		{"pcs", "resource", "create", "web", "ocf:heartbeat:anything", "binfile=/usr/sbin/haproxy",
			"cmdline_options=-f " + webCfg + " -db", "op", "monitor", "interval=5s", "timeout=10s", "--group", "webgrp", "--disabled"},
		{"pcs", "resource", "create", "web-reg", "ocf:ha-framework:directory-registration",
			"service_name=web", "service_port=" + webPort, "check_http=http://127.0.0.1:" + webPort + "/",
			"check_interval=2s", "check_timeout=1s", "--group", "webgrp", "--disabled"},
		{"pcs", "constraint", "location", "webgrp", "prefers", remote},
		{"pcs", "constraint", "order", "start", clientID + "-clone", "then", "webgrp"},
		{"pcs", "constraint", "colocation", "add", "webgrp", "with", clientID + "-clone"},
		{"pcs", "resource", "enable", "web", "web-reg"},
		// Consul runs everywhere by now; the proxies start without it anyway
		// (they follow the catalog as it comes).
		{"pcs", "resource", "create", "lb", "ocf:ha-framework:haproxy-dynamic", "routes=web=127.0.0.1:8081/http",
			"timeout_connect=1s", "retries=5", "clone", "interleave=true"},
	} {
		if out, err := c.Exec(n0, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	every := append(slices.Clone(c.Nodes), remote)
	if at := waitWebOn(t, c, n0, nil, 2*time.Minute); at != remote {
		t.Fatalf("webgrp Started on %s, want the remote node %s", at, remote)
	}
	waitStarted(t, c, n0, "lb", every, 2*time.Minute)
	// The registration names the instance after Pacemaker's node name, and
	// Consul's node is the remote host's agent.
	waitRegisteredOn(t, c, n0, host, true, remotePassWait)
	ids, err := webServiceIDs(c, n0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"web-" + remote}; !slices.Equal(ids, want) {
		t.Errorf("service IDs of web: %v, want %v (named after the Pacemaker node, not the host %s)", ids, want, host)
	}
	// web answers with its hostname: through the remote node's own proxy,
	// and through every full node's.
	waitServed(t, c, every, host, time.Minute)
	t.Logf("timing: web on %s registered passing as %s and served through the proxies of all %d nodes %s after create",
		remote, ids, len(every), time.Since(step).Round(100*time.Millisecond))
	// An administrator's check on the remote node: crm_resource gives the
	// agent no node name there, and the node has no crm_node to ask.
	if out, err := c.Exec(remote, "crm_resource", "--force-check", "-r", "web-reg"); err != nil {
		t.Errorf("crm_resource --force-check -r web-reg on %s: %v\n%s", remote, err, out)
	}
	if got, err := webServiceIDs(c, n0); err != nil || !slices.Equal(got, ids) {
		t.Errorf("service IDs of web after the forced check: %v (%v), want %v", got, err, ids)
	}

	// The example agent as a promotable clone on every node, promotion
	// allowed on the remote node only: it is promoted there only once its
	// monitor set the score through the remote node's crm_attribute.
	step = time.Now()
	for _, args := range [][]string{
		{"pcs", "resource", "create", promotableID, "ocf:ha-framework:example", "label=prom", "promotion_score=" + remoteScore,
			"op", "monitor", "interval=5s", "role=Unpromoted", "op", "monitor", "interval=6s", "role=Promoted",
			"promotable", "promoted-max=1", "--disabled"},
		{"pcs", "constraint", "location", promotableID + "-clone", "rule", "role=Promoted", "score=-INFINITY", "#kind", "ne", "remote"},
		{"pcs", "resource", "enable", promotableID + "-clone"},
	} {
		if out, err := c.Exec(n0, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	c.WaitFor(2*time.Minute, promotableID+" promoted on "+remote, func() (bool, string) {
		s, err := c.Status(n0)
		if err != nil {
			return false, err.Error()
		}
		nodes, roles := s.Resources[promotableID], s.Roles[promotableID]
		why := "on " + strings.Join(nodes, ",") + " roles " + strings.Join(roles, ",") + failures(s, promotableID)
		promoted := ""
		for i, r := range roles {
			if r == "Promoted" && len(roles) == len(nodes) {
				promoted = nodes[i]
			}
		}
		// One role per node when every instance is active.
		return len(nodes) == len(every) && len(roles) == len(every) && promoted == remote, why
	})
	if v, err := c.Exec(n0, "crm_attribute", "--promotion="+promotableID, "--lifetime=reboot", "--node="+remote, "--query", "--quiet"); err != nil || v != remoteScore {
		t.Errorf("promotion score of %s on %s, read on %s: %q (%v), want %s", promotableID, remote, n0, v, err, remoteScore)
	}
	t.Logf("timing: %s promoted on %s by its own score %s after create", promotableID, remote, time.Since(step).Round(100*time.Millisecond))

	// Nothing on the remote node failed on the way. (The servers' monitors
	// may have reported degraded before they had a leader.)
	s, err := c.Status(n0)
	if err != nil {
		t.Fatal(err)
	}
	if f := s.FailuresOf(clientID, "web", "web-reg", "lb", promotableID, remote); f != "" {
		t.Errorf("failed operations: %s", f)
	}
}

// createConsulClients creates the clone of Consul clients on the remote
// nodes, joining the servers on the full nodes, and waits until the
// servers list each of them alive.
func createConsulClients(t *testing.T, c *harness.Cluster) {
	t.Helper()
	var ips []string
	for _, n := range c.Nodes {
		ips = append(ips, c.IPs[n])
	}
	start := time.Now()
	if out, err := c.Exec(c.Nodes[0], "pcs", "resource", "create", clientID, "ocf:ha-framework:consul",
		"binary="+consulInNode, "mode=client", "retry_join="+strings.Join(ips, " "), "bind_addr="+consulBind(t, c),
		"data_dir=/var/lib/consul-client", "op", "start", "timeout=120s",
		// No Stopped instances for the full nodes: waitStarted wants none.
		"clone", "interleave=true", "clone-max="+strconv.Itoa(len(c.Remotes)), "--disabled"); err != nil {
		t.Fatalf("pcs resource create %s: %v\n%s", clientID, err, out)
	}
	onlyOnKind(t, c, clientID+"-clone", "remote")
	waitStarted(t, c, c.Nodes[0], clientID, c.Remotes, 2*time.Minute)
	c.WaitFor(time.Minute, "the remote nodes' consul clients alive", func() (bool, string) {
		out, err := consulGet(c, c.Nodes[0], "/v1/agent/members")
		if err != nil {
			return false, err.Error()
		}
		var members []struct {
			Addr   string
			Status int // serf: 1 alive
		}
		if err := json.Unmarshal([]byte(out), &members); err != nil {
			return false, err.Error()
		}
		for _, r := range c.Remotes {
			if !slices.ContainsFunc(members, func(m struct {
				Addr   string
				Status int
			}) bool {
				return m.Addr == c.IPs[r] && m.Status == 1
			}) {
				return false, r + " (" + c.IPs[r] + ") not an alive member: " + out
			}
		}
		return true, ""
	})
	t.Logf("timing: consul clients Started on %d remote nodes and alive %s after create", len(c.Remotes), time.Since(start).Round(100*time.Millisecond))
}

// webServiceIDs are the service IDs of web in the catalog, as node's
// Consul sees it, sorted.
func webServiceIDs(c *harness.Cluster, node string) ([]string, error) {
	out, err := consulGet(c, node, "/v1/catalog/service/web")
	if err != nil {
		return nil, err
	}
	var cat []struct{ ServiceID string }
	if err := json.Unmarshal([]byte(out), &cat); err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range cat {
		ids = append(ids, e.ServiceID)
	}
	slices.Sort(ids)
	return ids, nil
}

// clusterTestBinary builds ocf/cluster's integration tests into a static
// binary the nodes can run.
func clusterTestBinary(t *testing.T) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "cluster.test")
	cmd := exec.Command("go", "test", "-c", "-tags", "integration", "-o", bin, "./ocf/cluster")
	cmd.Dir = root
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ocf/cluster's tests: %v\n%s", err, out)
	}
	return bin
}
