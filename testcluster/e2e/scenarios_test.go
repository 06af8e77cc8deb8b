//go:build e2e

// Scenarios on real 3-node clusters: the consul agent as a
// clone of Consul servers, and a service group registered in Consul by the
// directory-registration agent. They need the real consul binary, from
// $HAFW_CONSUL or testcluster/scripts/build-consul.sh's cache, mounted
// read-only into every node at /hafw/consul.
package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

const (
	consulInNode = "/hafw/consul"
	consulID     = "consul" // primitive of the clone consul-clone
)

// consulBinary is the real consul binary on this host, or skips the test.
func consulBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HAFW_CONSUL"); p != "" {
		return p
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, "testcluster/scripts/build-consul.sh")).Output()
	if err != nil {
		t.Skipf("no consul binary (HAFW_CONSUL unset, build-consul.sh: %v)", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		t.Skip("build-consul.sh printed no path")
	}
	return lines[len(lines)-1]
}

// upWithConsul starts a cluster whose nodes have the consul binary.
func upWithConsul(t *testing.T, fencing bool) *harness.Cluster {
	t.Helper()
	start := time.Now()
	c := up(t, &harness.Options{Fencing: fencing, Files: map[string]string{consulBinary(t): consulInNode}})
	t.Logf("timing: cluster up in %s", time.Since(start).Round(100*time.Millisecond))
	return c
}

// createConsulClone creates the clone of Consul servers on every node and
// waits until all instances are Started and Consul has a leader.
func createConsulClone(t *testing.T, c *harness.Cluster) {
	t.Helper()
	var ips []string
	for _, n := range c.Nodes {
		ips = append(ips, c.IPs[n])
	}
	start := time.Now()
	out, err := c.Exec(c.Nodes[0], "pcs", "resource", "create", consulID, "ocf:ha-framework:consul",
		"binary="+consulInNode, "mode=server", "bootstrap_expect=3", "retry_join="+strings.Join(ips, " "), "bind_addr="+consulBindAddr(t, c),
		"data_dir=/var/lib/consul", "op", "start", "timeout=120s", "clone", "interleave=true")
	if err != nil {
		t.Fatalf("pcs resource create %s: %v\n%s", consulID, err, out)
	}
	waitConsulStarted(t, c, c.Nodes[0], c.Nodes, 3*time.Minute)
	c.WaitFor(time.Minute, "consul leader", func() (bool, string) {
		l, err := consulLeader(c, c.Nodes[0])
		return err == nil && l != "", "leader " + l
	})
	t.Logf("timing: consul clone Started on %d nodes with a leader %s after create", len(c.Nodes), time.Since(start).Round(100*time.Millisecond))
}

// consulBindAddr is a bind_addr template that every node resolves to its
// own cluster address. A VM has a management and a cluster address, so
// bind_addr picks the cluster one on every node with a template, as an
// administrator's clone would. The template matches interfaces whose whole
// network lies in the one given: the cluster network's own, read on a node.
func consulBindAddr(t *testing.T, c *harness.Cluster) string {
	t.Helper()
	return `{{ GetAllInterfaces | include "network" "` + clusterNetwork(t, c).String() + `" | attr "address" }}`
}

// waitConsulStarted waits until view's status shows the consul instance
// Started on exactly the nodes on, and none failed.
func waitConsulStarted(t *testing.T, c *harness.Cluster, view string, on []string, within time.Duration) {
	t.Helper()
	want := slices.Clone(on)
	slices.Sort(want)
	c.WaitFor(within, "consul Started on "+strings.Join(want, ","), func() (bool, string) {
		s, err := c.Status(view)
		if err != nil {
			return false, err.Error()
		}
		got := slices.Clone(s.Resources[consulID])
		slices.Sort(got)
		started := 0
		for _, r := range s.Roles[consulID] {
			if r == "Started" {
				started++
			}
		}
		why := "active on [" + strings.Join(got, ",") + "], roles " + strings.Join(s.Roles[consulID], ",") + failures(s, consulID)
		if slices.Contains(s.Failed, consulID) {
			return false, why + ", failed"
		}
		return slices.Equal(got, want) && started == len(want), why
	})
}

// consulGet is GET path of the local Consul agent on node, body trimmed.
func consulGet(c *harness.Cluster, node, path string) (string, error) {
	return c.Exec(node, "curl", "-sf", "-m", "5", "http://127.0.0.1:8500"+path)
}

// consulLeader is node's Consul view of the leader ("ip:port", "" for none).
func consulLeader(c *harness.Cluster, node string) (string, error) {
	out, err := consulGet(c, node, "/v1/status/leader")
	if err != nil {
		return "", err
	}
	var l string
	err = json.Unmarshal([]byte(out), &l)
	return l, err
}

func consulPeers(c *harness.Cluster, node string) ([]string, error) {
	out, err := consulGet(c, node, "/v1/status/peers")
	if err != nil {
		return nil, err
	}
	var p []string
	err = json.Unmarshal([]byte(out), &p)
	return p, err
}

// consulPID is the pid of the consul agent process in node.
func consulPID(c *harness.Cluster, node string) string {
	out, _ := c.Exec(node, "pgrep", "-f", "^"+consulInNode+" agent")
	return strings.TrimSpace(out)
}

// nodeOfAddr is the node whose address addr ("ip:port") is.
func nodeOfAddr(c *harness.Cluster, addr string) string {
	ip, _, _ := strings.Cut(addr, ":")
	for n, a := range c.IPs {
		if a == ip {
			return n
		}
	}
	return ""
}

// failures is ", failed: ..." with the failed operations of ids, "" when
// none failed: a failed start leaves an instance Stopped and says why only
// there.
func failures(s harness.Status, ids ...string) string {
	if f := s.FailuresOf(ids...); f != "" {
		return ", failed: " + f
	}
	return ""
}

func others(c *harness.Cluster, but string) []string {
	var rest []string
	for _, n := range c.Nodes {
		if n != but {
			rest = append(rest, n)
		}
	}
	return rest
}

// waitFenced waits until view's fencing history shows victim fenced.
func waitFenced(t *testing.T, c *harness.Cluster, view, victim string, within time.Duration) {
	t.Helper()
	c.WaitFor(within, victim+" fenced", func() (bool, string) {
		out, _ := c.Exec(view, "stonith_admin", "--history", victim)
		return strings.Contains(out, "successful"), strings.TrimSpace(out)
	})
}

func TestConsulClone(t *testing.T) {
	c := upWithConsul(t, true)
	c.EnableFencing()
	createConsulClone(t, c)

	// Kill the Consul leader's node: the survivors must elect a new one.
	l, err := consulLeader(c, c.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	victim := nodeOfAddr(c, l)
	if victim == "" {
		t.Fatalf("leader %q is no node's address (%v)", l, c.IPs)
	}
	survivors := others(c, victim)
	pids := map[string]string{}
	for _, n := range survivors {
		if pids[n] = consulPID(c, n); pids[n] == "" {
			t.Fatalf("no consul process on %s", n)
		}
	}
	t.Logf("killing %s, the Consul leader (%s)", victim, l)
	c.Kill(victim)
	killed := time.Now()
	c.WaitFor(30*time.Second, "new consul leader on the survivors", func() (bool, string) {
		var seen []string
		for _, n := range survivors {
			l, err := consulLeader(c, n)
			if err != nil {
				return false, n + ": " + err.Error()
			}
			seen = append(seen, l)
		}
		return seen[0] != "" && seen[0] == seen[1] && nodeOfAddr(c, seen[0]) != victim,
			"leaders " + strings.Join(seen, ", ")
	})
	l, _ = consulLeader(c, survivors[0])
	t.Logf("timing: new consul leader %s (%s) %s after the kill", l, nodeOfAddr(c, l), time.Since(killed).Round(100*time.Millisecond))

	waitFenced(t, c, survivors[0], victim, 2*time.Minute)
	t.Logf("timing: %s fenced %s after the kill", victim, time.Since(killed).Round(100*time.Millisecond))
	waitConsulStarted(t, c, survivors[0], survivors, time.Minute)
	for _, n := range survivors {
		if p := consulPID(c, n); p != pids[n] {
			t.Errorf("consul on %s was restarted: pid %s, was %s", n, p, pids[n])
		}
	}
	// A while of monitors (10s depth 0, 60s depth 10) on the degraded
	// Consul cluster must not make Pacemaker touch the survivors.
	time.Sleep(15 * time.Second)
	waitConsulStarted(t, c, survivors[0], survivors, time.Second)
	if l, err := consulLeader(c, survivors[1]); err != nil || l == "" {
		t.Errorf("survivors lost their leader: %q %v", l, err)
	}

	c.Start(victim)
	started := time.Now()
	c.WaitReady(2 * time.Minute)
	t.Logf("timing: %s rejoined Pacemaker %s after power-on", victim, time.Since(started).Round(100*time.Millisecond))
	waitConsulStarted(t, c, survivors[0], c.Nodes, 3*time.Minute)
	c.WaitFor(time.Minute, "3 raft peers everywhere", func() (bool, string) {
		for _, n := range c.Nodes {
			p, err := consulPeers(c, n)
			if err != nil {
				return false, n + ": " + err.Error()
			}
			if len(p) != 3 {
				return false, n + ": peers " + strings.Join(p, ",")
			}
			if l, err := consulLeader(c, n); err != nil || l == "" {
				return false, n + ": no leader"
			}
		}
		return true, ""
	})
	t.Logf("timing: consul Started on %s again, 3 raft peers, %s after power-on", victim, time.Since(started).Round(100*time.Millisecond))
	for _, n := range survivors {
		if p := consulPID(c, n); p != pids[n] {
			t.Errorf("consul on %s was restarted by the rejoin: pid %s, was %s", n, p, pids[n])
		}
	}
}

// webInstances are the nodes of service web: in the catalog, and with all
// checks passing (/v1/health/service/web?passing), as node sees them.
func webInstances(c *harness.Cluster, node string) (catalog, passing []string, err error) {
	out, err := consulGet(c, node, "/v1/catalog/service/web")
	if err != nil {
		return nil, nil, err
	}
	var cat []struct{ Node, ServiceID string }
	if err := json.Unmarshal([]byte(out), &cat); err != nil {
		return nil, nil, err
	}
	for _, e := range cat {
		catalog = append(catalog, e.Node)
	}
	out, err = consulGet(c, node, "/v1/health/service/web?passing")
	if err != nil {
		return nil, nil, err
	}
	var health []struct{ Node struct{ Node string } }
	if err := json.Unmarshal([]byte(out), &health); err != nil {
		return nil, nil, err
	}
	for _, e := range health {
		passing = append(passing, e.Node.Node)
	}
	slices.Sort(catalog)
	slices.Sort(passing)
	return catalog, passing, nil
}

// waitGroupOn waits until view sees app and reg Started on one node
// (not on any of avoid) and returns that node.
func waitGroupOn(t *testing.T, c *harness.Cluster, view string, avoid []string, within time.Duration) string {
	t.Helper()
	var at string
	c.WaitFor(within, "group svc Started on one node", func() (bool, string) {
		s, err := c.Status(view)
		if err != nil {
			return false, err.Error()
		}
		app, reg := s.Resources["app"], s.Resources["reg"]
		why := "app on [" + strings.Join(app, ",") + "], reg on [" + strings.Join(reg, ",") + "]"
		if len(app) != 1 || len(reg) != 1 || app[0] != reg[0] || slices.Contains(avoid, app[0]) {
			return false, why
		}
		if s.Roles["app"][0] != "Started" || s.Roles["reg"][0] != "Started" {
			return false, why + " roles " + s.Roles["app"][0] + "/" + s.Roles["reg"][0]
		}
		at = app[0]
		return true, ""
	})
	return at
}

// waitRegisteredOn waits until view's Consul serves web passing on node
// only; with only, the catalog must hold no other instance either.
func waitRegisteredOn(t *testing.T, c *harness.Cluster, view, node string, only bool, within time.Duration) []string {
	t.Helper()
	var cat []string
	c.WaitFor(within, "web registered on "+node, func() (bool, string) {
		var pass []string
		var err error
		cat, pass, err = webInstances(c, view)
		if err != nil {
			return false, err.Error()
		}
		why := "catalog [" + strings.Join(cat, ",") + "], passing [" + strings.Join(pass, ",") + "]"
		ok := slices.Equal(pass, []string{node}) && slices.Contains(cat, node)
		if only {
			ok = ok && slices.Equal(cat, []string{node})
		}
		return ok, why
	})
	return cat
}

func TestRegistrationGroup(t *testing.T) {
	c := upWithConsul(t, true)
	c.EnableFencing()
	createConsulClone(t, c)

	n0 := c.Nodes[0]
	start := time.Now()
	for _, args := range [][]string{
		{"pcs", "resource", "create", "app", "ocf:ha-framework:example", "label=app", "op", "monitor", "interval=5s", "--group", "svc"},
		{"pcs", "resource", "create", "reg", "ocf:ha-framework:directory-registration",
			"service_name=web", "service_port=80", "check_ttl=30s", "consul_address=127.0.0.1:8500", "--group", "svc"},
		// Without stickiness the scheduler may put the group back where it
		// was once pcs 0.11's move removes its temporary constraint.
		{"pcs", "resource", "meta", "svc", "resource-stickiness=100"},
		{"pcs", "constraint", "order", "start", "consul-clone", "then", "svc"},
		{"pcs", "constraint", "colocation", "add", "svc", "with", "consul-clone"},
	} {
		if out, err := c.Exec(n0, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	at := waitGroupOn(t, c, n0, nil, 2*time.Minute)
	waitRegisteredOn(t, c, n0, at, true, time.Minute)
	t.Logf("timing: group svc Started on %s and web registered (passing) %s after create", at, time.Since(start).Round(100*time.Millisecond))

	// Move: the registration follows the group.
	target := others(c, at)[0]
	moved := time.Now()
	if out, err := c.Exec(n0, "pcs", "resource", "move", "svc", target); err != nil {
		t.Fatalf("pcs resource move svc %s: %v\n%s", target, err, out)
	}
	if got := waitGroupOn(t, c, n0, []string{at}, 2*time.Minute); got != target {
		t.Fatalf("svc moved to %s, want %s", got, target)
	}
	// Asked from a node that does not run it.
	view := others(c, target)[0]
	waitRegisteredOn(t, c, view, target, true, time.Minute)
	t.Logf("timing: moved %s → %s, catalog (seen from %s) shows web only there %s after the move", at, target, view, time.Since(moved).Round(100*time.Millisecond))
	// pcs 0.11 removes its constraint itself; clear is harmless.
	if out, err := c.Exec(n0, "pcs", "resource", "clear", "svc"); err != nil {
		t.Logf("pcs resource clear svc: %v\n%s", err, out)
	}
	if got := waitGroupOn(t, c, n0, nil, 30*time.Second); got != target {
		t.Fatalf("after clear svc runs on %s, want it to stay on %s", got, target)
	}

	// Kill the node running it: the group restarts elsewhere, registered there.
	victim := target
	survivors := others(c, victim)
	c.Kill(victim)
	killed := time.Now()
	waitFenced(t, c, survivors[0], victim, 2*time.Minute)
	t.Logf("timing: %s fenced %s after the kill", victim, time.Since(killed).Round(100*time.Millisecond))
	now := waitGroupOn(t, c, survivors[0], []string{victim}, 2*time.Minute)
	t.Logf("timing: svc Started on %s %s after the kill", now, time.Since(killed).Round(100*time.Millisecond))
	view = others(c, now)[0]
	if view == victim {
		view = others(c, now)[1]
	}
	cat := waitRegisteredOn(t, c, view, now, false, time.Minute)
	t.Logf("timing: web passing only on %s (seen from %s) %s after the kill; catalog nodes %v (a dead node may keep its entry, with serfHealth critical)",
		now, view, time.Since(killed).Round(100*time.Millisecond), cat)
}
