//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

// Active-active: a stateless service run as a clone (an instance on every
// node, each registered in Consul), reached through haproxy-dynamic. A node
// loss needs no Pacemaker action to stay hidden from clients: a request the
// proxy sends to the lost instance fails to connect within timeout_connect
// and is sent to another instance (retries with option redispatch). The
// route is checked ("check"): that failed connection also marks the
// instance down in the proxy at once (observe layer4), so the next
// requests avoid it, until Consul's failure detection takes it out of the
// backend.
const (
	webAACfg  = "/tmp/webaa.cfg"
	webAAPort = "8090"
	aaURL     = "http://127.0.0.1:8082/"
	aaRoutes  = "web=127.0.0.1:8081/http,webaa=127.0.0.1:8082/http/check"
	// aaConnect is haproxy-dynamic's timeout_connect for this service: on
	// a LAN a connection is set up in well under a millisecond, so 200 ms
	// means the instance is gone, and is all a client waits for it.
	aaConnect = "200ms"
	// aaNeed is how many answers after the fault a client waits for: about
	// 10 s of requests, past Consul's detection of the lost node.
	aaNeed = 100
)

// setupActiveActive adds, on a cluster set up by setupProxyFailover, the
// clone of the group webaagrp (webaa, webaa-reg) and its route on lb, and
// returns once every node's proxy spreads requests over all instances.
func setupActiveActive(t *testing.T, c *harness.Cluster) {
	t.Helper()
	n0 := c.Nodes[0]
	for _, n := range c.Nodes {
		if out, err := c.Exec(n, "sh", "-c", "cat > "+webAACfg+" <<'EOF'\n"+webConfig(webAAPort)+"EOF\nhaproxy -c -f "+webAACfg); err != nil {
			t.Fatalf("%s: writing %s: %v\n%s", n, webAACfg, err, out)
		}
	}
	start := time.Now()
	for _, args := range [][]string{
		{"pcs", "resource", "update", "lb", "routes=" + aaRoutes, "timeout_connect=" + aaConnect},
		{"pcs", "resource", "create", "webaa", "ocf:heartbeat:anything", "binfile=/usr/sbin/haproxy",
			"cmdline_options=-f " + webAACfg + " -db", "op", "monitor", "interval=1s", "timeout=10s", "--group", "webaagrp"},
		{"pcs", "resource", "create", "webaa-reg", "ocf:ha-framework:directory-registration",
			"service_name=webaa", "service_port=" + webAAPort, "check_http=http://127.0.0.1:" + webAAPort + "/",
			"check_interval=1s", "check_timeout=1s", "drain_period=0", "--group", "webaagrp"},
		{"pcs", "resource", "clone", "webaagrp", "interleave=true"},
		{"pcs", "constraint", "order", "start", "consul-clone", "then", "webaagrp-clone"},
		{"pcs", "constraint", "colocation", "add", "webaagrp-clone", "with", "consul-clone"},
	} {
		if out, err := c.Exec(n0, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	waitAAStarted(t, c, n0, c.Nodes, 2*time.Minute)
	waitAAServed(t, c, c.Nodes, time.Minute)
	t.Logf("timing: webaa on %d nodes, every proxy spreading over all of them %s after create",
		len(c.Nodes), time.Since(start).Round(100*time.Millisecond))
}

// waitAAStarted waits until view sees webaa and webaa-reg Started on
// exactly the nodes on.
func waitAAStarted(t *testing.T, c *harness.Cluster, view string, on []string, within time.Duration) {
	t.Helper()
	for _, id := range []string{"webaa", "webaa-reg"} {
		waitStarted(t, c, view, id, on, within)
	}
}

// waitAAServed waits until the proxy on each of from has answered from
// every node of the cluster.
func waitAAServed(t *testing.T, c *harness.Cluster, from []string, within time.Duration) {
	t.Helper()
	c.WaitFor(within, "webaa served by every node through the proxies of "+strings.Join(from, ","), func() (bool, string) {
		for _, n := range from {
			out, err := c.Exec(n, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9; do curl -sf -m 2 "+aaURL+"; echo; done")
			if err != nil {
				return false, fmt.Sprintf("%s: %v", n, err)
			}
			for _, want := range c.Nodes {
				if !slices.Contains(strings.Fields(out), want) {
					return false, fmt.Sprintf("%s: no answer from %s in %q", n, want, strings.Join(strings.Fields(out), " "))
				}
			}
		}
		return true, ""
	})
}

// activeActiveLoss kills victim while a client on clientNode calls webaa
// through its local proxy, and returns what the client saw.
func activeActiveLoss(t *testing.T, c *harness.Cluster, clientNode, victim string) outage {
	t.Helper()
	cl := startClientOf(t, c, clientNode, "", aaNeed, aaURL)
	// Long enough before the fault to see how long requests take on
	// this machine with nothing failing: on a loaded one, hundreds of
	// milliseconds.
	time.Sleep(5 * time.Second)
	role := consulRole(c, clientNode, victim)
	fault := nowMs()
	c.Kill(victim)
	cl.fault(t, fault)
	o, ss := cl.wait(t, fault, "")
	// Any answer after the fault is a recovery here, so measure's gap
	// ends with the first one; what counts is every wait after it.
	o.slowest, o.gap, o.calm = waitsAfter(ss, fault)
	t.Logf("active-active: lost %s (%s; client %s): %d/%d requests failed, slowest request %s (before the fault %s), longest time without an answer %s; requests slower than %s: %s",
		victim, role, clientNode, o.failed, o.requests, o.slowest, o.calm, o.gap, slowRequest, slowRequests(ss, fault))
	return o
}

// reportActiveActive prints the distributions of the active-active node
// losses: the client should see neither a failure nor a wait of a second.
func reportActiveActive(t *testing.T, os []outage) {
	t.Helper()
	what := "active-active node loss (token " + harness.EnvOr("HAFW_TOKEN_MS", "default") + ")"
	if len(os) == 0 {
		t.Logf("BENCH %s: no runs", what)
		return
	}
	var slowest, gaps, calm []time.Duration
	failed, over := 0, 0
	for _, o := range os {
		failed += o.failed
		slowest = append(slowest, o.slowest)
		gaps = append(gaps, o.gap)
		calm = append(calm, o.calm)
		if o.slowest >= time.Second || o.failed > 0 {
			over++
		}
	}
	line := fmt.Sprintf("BENCH %-38s runs=%d slowest request ms %s (before the fault, nothing failing: %s) | longest time without an answer ms %s | failed requests %d | goal 0 failed and slowest <1s: %d runs missed",
		what, len(os), dist(slowest), dist(calm), dist(gaps), failed, over)
	t.Log(line)
	fmt.Println(line)
}
