//go:build e2e

// Client-observed failover through haproxy-dynamic: a service
// "web" (a tiny HAProxy answering with its node's name) in a group with its
// directory-registration, the haproxy-dynamic clone routing web on every
// node, and a client on another node curling the local proxy in a loop
// while the service's process or node dies.
//
//	testcluster/dockercluster/run-e2e.sh -run TestProxyFailover -v
//	testcluster/dockercluster/bench-failover.sh    # TestBenchFailover, repeated runs
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

const (
	webCfg        = "/tmp/web.cfg"
	webPort       = "8080"
	proxyURL      = "http://127.0.0.1:8081/"
	clientReq     = "600" // requests it makes at most
	clientTimeout = "30"  // seconds one request may take (curl -m)
	faultFile     = "/tmp/hafw-fault-ms"
)

// webConfig answers every request on port with the node's hostname (%H).
// It binds every address: the proxies on the other nodes reach it through
// the node's address, which directory-registration leaves to Consul (the
// node address).
func webConfig(port string) string {
	return `global
    maxconn 200
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind 0.0.0.0:` + port + `
    http-request return status 200 content-type text/plain lf-string "%H"
`
}

// clientLoop curls the local proxy ($3, default proxyURL) one request at a
// time, 100 ms apart, and prints "START_MS END_MS RESULT" per request
// (RESULT: the answering node, or FAIL). A request may take up to
// clientTimeout: the proxy holds it while it retries. Once the test wrote
// the fault's time (unix ms) to faultFile, the loop stops after $2
// (default 10) successes of requests started after it and not answered by
// $1 (empty: anyone), or after clientMax seconds / clientReq requests.
const clientLoop = `avoid=$1; need=${2:-10}; url=${3:-` + proxyURL + `}; n=0; ok=0; end=$(( $(date +%s) + ` + clientMax + ` ))
rm -f ` + faultFile + `
while [ $n -lt ` + clientReq + ` ] && [ $(date +%s) -lt $end ]; do
  t=$(date +%s%3N)
  r=$(curl -sf -m ` + clientTimeout + ` "$url" 2>/dev/null) || r=FAIL
  [ -n "$r" ] || r=FAIL
  echo "$t $(date +%s%3N) $r"
  n=$((n+1))
  f=$(cat ` + faultFile + ` 2>/dev/null || echo 0)
  if [ "$f" -gt 0 ] && [ $t -ge "$f" ] && [ "$r" != FAIL ] && [ "$r" != "$avoid" ]; then
    ok=$((ok+1)); [ $ok -ge "$need" ] && break
  fi
  sleep 0.1
done
`

// The proxies hold a request for the lost instance (none_passing=keep)
// by retrying its connection, each try ending after lbConnect. Once the
// new instance is routable, the next try goes there: a held request waits
// up to lbConnect (plus HAProxy's turn-around, min(lbConnect, 1s), when
// the try was refused) for it. lbRetries tries hold a request about 30 s
// (a node loss here takes 10-15 s), 60 s when the tries are refused.
const (
	lbConnect = "300ms"
	lbRetries = "100"
)

// createLB creates the haproxy-dynamic clone lb, routing web on
// 127.0.0.1:8081 of every node, after and with the consul clone.
func createLB(t *testing.T, c *harness.Cluster) {
	t.Helper()
	for _, args := range [][]string{
		{"pcs", "resource", "create", "lb", "ocf:ha-framework:haproxy-dynamic", "routes=web=127.0.0.1:8081/http", "timeout_connect=" + lbConnect, "retries=" + lbRetries,
			"clone", "interleave=true"},
		{"pcs", "constraint", "order", "start", "consul-clone", "then", "lb-clone"},
		{"pcs", "constraint", "colocation", "add", "lb-clone", "with", "consul-clone"},
	} {
		if out, err := c.Exec(c.Nodes[0], args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// setupProxyFailover creates, on a running cluster with the consul clone,
// the haproxy-dynamic clone lb and the group webgrp (web, web-reg), and
// returns the node running web once the proxy on every other node serves it.
func setupProxyFailover(t *testing.T, c *harness.Cluster) string {
	t.Helper()
	n0 := c.Nodes[0]
	for _, n := range c.Nodes {
		if out, err := c.Exec(n, "sh", "-c", "cat > "+webCfg+" <<'EOF'\n"+webConfig(webPort)+"EOF\nhaproxy -c -f "+webCfg); err != nil {
			t.Fatalf("%s: writing %s: %v\n%s", n, webCfg, err, out)
		}
	}
	start := time.Now()
	createLB(t, c)
	for _, args := range [][]string{
		{"pcs", "resource", "create", "web", "ocf:heartbeat:anything", "binfile=/usr/sbin/haproxy",
			"cmdline_options=-f " + webCfg + " -db", "op", "monitor", "interval=1s", "timeout=10s", "--group", "webgrp"},
		{"pcs", "resource", "create", "web-reg", "ocf:ha-framework:directory-registration",
			"service_name=web", "service_port=" + webPort, "check_http=http://127.0.0.1:" + webPort + "/",
			"check_interval=1s", "check_timeout=1s", "drain_period=0", "--group", "webgrp"},
		{"pcs", "resource", "meta", "webgrp", "resource-stickiness=100"},
		{"pcs", "constraint", "order", "start", "consul-clone", "then", "webgrp"},
		{"pcs", "constraint", "colocation", "add", "webgrp", "with", "consul-clone"},
	} {
		if out, err := c.Exec(n0, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	waitLBStarted(t, c, n0, c.Nodes, 2*time.Minute)
	at := waitWebOn(t, c, n0, nil, 2*time.Minute)
	waitServed(t, c, others(c, at), at, time.Minute)
	t.Logf("timing: lb on %d nodes, web on %s, served by every other proxy %s after create",
		len(c.Nodes), at, time.Since(start).Round(100*time.Millisecond))
	return at
}

// waitLBStarted waits until view sees the lb clone Started on exactly on.
func waitLBStarted(t *testing.T, c *harness.Cluster, view string, on []string, within time.Duration) {
	t.Helper()
	waitStarted(t, c, view, "lb", on, within)
}

// waitWebOn waits until view sees web and web-reg Started together on a
// node not in avoid, and returns it.
func waitWebOn(t *testing.T, c *harness.Cluster, view string, avoid []string, within time.Duration) string {
	t.Helper()
	var at string
	c.WaitFor(within, "webgrp Started", func() (bool, string) {
		s, err := c.Status(view)
		if err != nil {
			return false, err.Error()
		}
		w, r := s.Resources["web"], s.Resources["web-reg"]
		why := fmt.Sprintf("web on %v %v, web-reg on %v %v", w, s.Roles["web"], r, s.Roles["web-reg"]) + failures(s, "web", "web-reg")
		if len(w) != 1 || len(r) != 1 || w[0] != r[0] || slices.Contains(avoid, w[0]) ||
			s.Roles["web"][0] != "Started" || s.Roles["web-reg"][0] != "Started" {
			return false, why
		}
		at = w[0]
		return true, ""
	})
	return at
}

// waitServed waits until the proxy on each of from answers with at's name.
func waitServed(t *testing.T, c *harness.Cluster, from []string, at string, within time.Duration) {
	t.Helper()
	c.WaitFor(within, "web served by "+at+" through the proxies of "+strings.Join(from, ","), func() (bool, string) {
		for _, n := range from {
			out, err := c.Exec(n, "curl", "-sf", "-m", "2", proxyURL)
			if err != nil || strings.TrimSpace(out) != at {
				return false, fmt.Sprintf("%s: %q %v", n, out, err)
			}
		}
		return true, ""
	})
}

// client is a running client loop on one node.
type client struct {
	c    *harness.Cluster
	node string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

func startClient(t *testing.T, c *harness.Cluster, node, avoid string) *client {
	t.Helper()
	return startClientOf(t, c, node, avoid, 10, proxyURL)
}

// startClientOf is startClient calling url, until need successes after
// the fault.
func startClientOf(t *testing.T, c *harness.Cluster, node, avoid string, need int, url string) *client {
	t.Helper()
	cl := &client{c: c, node: node}
	cl.cmd = c.Command(context.Background(), node, "bash", "-c", clientLoop, "client", avoid, strconv.Itoa(need), url)
	cl.cmd.Stdout = &cl.out
	cl.cmd.Stderr = &cl.out
	if err := cl.cmd.Start(); err != nil {
		t.Fatalf("client on %s: %v", node, err)
	}
	return cl
}

// fault tells the client when the fault was injected (unix ms).
func (cl *client) fault(t *testing.T, at int64) {
	t.Helper()
	if out, err := cl.c.Exec(cl.node, "sh", "-c", "echo "+strconv.FormatInt(at, 10)+" > "+faultFile); err != nil {
		t.Fatalf("client on %s: %v\n%s", cl.node, err, out)
	}
}

// wait ends with the loop (bounded by clientMax) and measures the outage
// around the fault injected at fault (unix ms).
func (cl *client) wait(t *testing.T, fault int64, avoid string) (outage, []sample) {
	t.Helper()
	if err := cl.cmd.Wait(); err != nil {
		t.Errorf("client loop: %v\n%s", err, cl.out.String())
	}
	var ss []sample
	for _, line := range strings.Split(strings.TrimSpace(cl.out.String()), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Logf("client: odd line %q", line)
			continue
		}
		start, err1 := strconv.ParseInt(f[0], 10, 64)
		end, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Logf("client: odd line %q", line)
			continue
		}
		ss = append(ss, sample{start, end, f[2]})
	}
	return measure(ss, fault, avoid), ss
}

// consulRole says whether node is the Consul leader, as view sees it: losing
// the leader adds a Raft election before the catalog takes the new instance.
func consulRole(c *harness.Cluster, view, node string) string {
	l, err := consulLeader(c, view)
	switch {
	case err != nil:
		return "consul leader unknown: " + err.Error()
	case nodeOfAddr(c, l) == node:
		return "the consul leader"
	default:
		return "consul leader is " + nodeOfAddr(c, l)
	}
}

func nowMs() int64 { return time.Now().UnixMilli() }

// crashWeb kill -9s the web process on node, telling cl, and returns when
// it did.
func crashWeb(t *testing.T, c *harness.Cluster, cl *client, node string) int64 {
	t.Helper()
	pid, err := c.Exec(node, "pgrep", "-f", "^/usr/sbin/haproxy -f "+webCfg)
	pid = strings.TrimSpace(pid)
	if err != nil || pid == "" || strings.Contains(pid, "\n") {
		t.Fatalf("web process on %s: %q %v", node, pid, err)
	}
	// The time is taken on the node, right before the kill: the client
	// counts only requests started after it.
	out, err := c.Exec(node, "sh", "-c", "date +%s%3N; kill -9 "+pid)
	at, perr := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil || perr != nil {
		t.Fatalf("kill -9 %s on %s: %v %v\n%s", pid, node, err, perr, out)
	}
	cl.fault(t, at)
	return at
}

func TestProxyFailover(t *testing.T) {
	c := upWithConsul(t, true)
	c.EnableFencing()
	createConsulClone(t, c)
	at := setupProxyFailover(t, c)
	clientNode := others(c, at)[0]

	cl := startClient(t, c, clientNode, at)
	time.Sleep(3 * time.Second) // a baseline of successes
	t.Logf("killing %s (runs web; %s); client on %s", at, consulRole(c, clientNode, at), clientNode)
	fault := nowMs()
	c.Kill(at)
	cl.fault(t, fault)
	o, ss := cl.wait(t, fault, at)
	t.Logf("node loss: %s", o)
	logSamples(t, ss, fault)
	if o.before != at {
		t.Errorf("before the kill the client was served by %q, want %s", o.before, at)
	}
	const bound = 40 * time.Second
	if o.recovered == 0 {
		t.Fatalf("web never served again within the client's %ss", clientMax)
	}
	if d := o.sinceFault(); d > bound {
		t.Errorf("served again %s after the kill, want within %s", d, bound)
	}
	if o.after == at || o.after == "" {
		t.Errorf("served again by %q, want a node other than %s", o.after, at)
	}
	// The proxies keep routing to the lost instance (none_passing=keep)
	// and retry it until the new one passes: a client with a long enough
	// timeout sees slow answers, not errors.
	if o.failed > 0 {
		t.Errorf("%d requests failed during the failover, want none", o.failed)
	}
	survivors := others(c, at)
	waitFenced(t, c, survivors[0], at, 2*time.Minute)
	now := waitWebOn(t, c, survivors[0], []string{at}, time.Minute)
	if now != o.after {
		t.Errorf("Pacemaker runs web on %s, the client was served by %s", now, o.after)
	}
}

// TestBenchFailover measures repeated failovers; it runs only with
// HAFW_BENCH_FAILOVER=1 (testcluster/dockercluster/bench-failover.sh). Knobs:
// HAFW_BENCH_CRASH (process crashes, default 5), HAFW_BENCH_NODELOSS (node
// losses with fencing, default 3), HAFW_BENCH_ACTIVE (node losses under
// the active-active clone, default 3), HAFW_BENCH_MAX (total time cap,
// default 25m). Goals: crash < 2s, node loss < 8s (fault → served again);
// active-active: no failed request, none slower than 1s.
func TestBenchFailover(t *testing.T) {
	if os.Getenv("HAFW_BENCH_FAILOVER") != "1" {
		t.Skip("benchmark: set HAFW_BENCH_FAILOVER=1 (testcluster/dockercluster/bench-failover.sh)")
	}
	crashes, losses := envInt(t, "HAFW_BENCH_CRASH", 5), envInt(t, "HAFW_BENCH_NODELOSS", 3)
	actives := envInt(t, "HAFW_BENCH_ACTIVE", 3)
	capDur, err := time.ParseDuration(harness.EnvOr("HAFW_BENCH_MAX", "25m"))
	if err != nil {
		t.Fatalf("HAFW_BENCH_MAX: %v", err)
	}
	deadline := time.Now().Add(capDur)

	c := upWithConsul(t, true)
	c.EnableFencing()
	createConsulClone(t, c)
	at := setupProxyFailover(t, c)

	var crash, loss, aa []outage
	// Reported even when a step fails (t.Fatal runs deferred calls).
	defer func() {
		report(t, "crash (kill -9 of web)", crash, 2*time.Second)
		report(t, "node loss (fenced, token "+harness.EnvOr("HAFW_TOKEN_MS", "default")+")", loss, 8*time.Second)
		reportActiveActive(t, aa)
	}()
	for i := 0; i < crashes && time.Now().Before(deadline); i++ {
		clientNode := others(c, at)[0]
		cl := startClient(t, c, clientNode, "")
		time.Sleep(2 * time.Second)
		fault := crashWeb(t, c, cl, at)
		o, _ := cl.wait(t, fault, "")
		t.Logf("crash %d/%d of web on %s (client %s): %s", i+1, crashes, at, clientNode, o)
		crash = append(crash, o)
		var served time.Time
		if o.recovered > 0 {
			served = time.UnixMilli(o.recovered)
		}
		line := fmt.Sprintf("BENCH-STEPS crash %d/%d: %s", i+1, crashes,
			readCrashSteps(survivorLogs(t, c, c.Nodes), time.UnixMilli(fault), served, "web", "web-reg"))
		t.Log(line)
		fmt.Println(line)
		// Clean up only once the recovery's transition is over, and let
		// the re-probes the cleanup starts finish too.
		settle(t, c, c.Nodes[0], 2*time.Minute)
		if out, err := c.Exec(c.Nodes[0], "crm_resource", "--cleanup", "-r", "web"); err != nil {
			t.Logf("cleanup web: %v\n%s", err, out)
		}
		settle(t, c, c.Nodes[0], 2*time.Minute)
		at = waitWebOn(t, c, c.Nodes[0], nil, time.Minute)
		waitServed(t, c, others(c, at), at, time.Minute)
	}
	for i := 0; i < losses && time.Now().Before(deadline); i++ {
		clientNode := others(c, at)[0]
		cl := startClient(t, c, clientNode, at)
		time.Sleep(2 * time.Second)
		role := consulRole(c, clientNode, at)
		fault := nowMs()
		c.Kill(at)
		cl.fault(t, fault)
		o, _ := cl.wait(t, fault, at)
		t.Logf("node loss %d/%d of %s (%s; client %s): %s", i+1, losses, at, role, clientNode, o)
		loss = append(loss, o)
		victim := at
		waitFenced(t, c, clientNode, victim, 2*time.Minute)
		at = waitWebOn(t, c, clientNode, []string{victim}, time.Minute)
		var served time.Time
		if o.recovered > 0 {
			served = time.UnixMilli(o.recovered)
		}
		st := readSteps(survivorLogs(t, c, others(c, victim)), time.UnixMilli(fault), victim, "web", "web-reg")
		line := fmt.Sprintf("BENCH-STEPS node loss %d/%d: %s", i+1, losses, st.breakdown(time.UnixMilli(fault), served))
		t.Log(line)
		fmt.Println(line)
		if (i+1 < losses || actives > 0) && time.Now().Before(deadline) {
			restore(t, c, clientNode, victim)
			at = waitWebOn(t, c, clientNode, nil, time.Minute)
			waitServed(t, c, others(c, at), at, time.Minute)
		}
	}
	if actives == 0 || !time.Now().Before(deadline) {
		return
	}
	setupActiveActive(t, c)
	for i := 0; i < actives && time.Now().Before(deadline); i++ {
		// The client's node and the victim take turns.
		clientNode, victim := c.Nodes[i%len(c.Nodes)], c.Nodes[(i+1)%len(c.Nodes)]
		aa = append(aa, activeActiveLoss(t, c, clientNode, victim))
		waitFenced(t, c, clientNode, victim, 2*time.Minute)
		if i+1 < actives && time.Now().Before(deadline) {
			restore(t, c, clientNode, victim)
			waitAAStarted(t, c, clientNode, c.Nodes, 2*time.Minute)
			waitAAServed(t, c, c.Nodes, time.Minute)
		}
	}
}

// survivorLogs is the lines of nodes' corosync and pacemaker logs that
// readSteps and readCrashSteps look for.
func survivorLogs(t *testing.T, c *harness.Cluster, nodes []string) []string {
	t.Helper()
	var lines []string
	for _, n := range nodes {
		out, err := c.Exec(n, "grep", "-h", "-E", "processor failed|new membership|state is now lost|S_ELECTION -> S_INTEGRATION|S_FINALIZE_JOIN -> S_POLICY_ENGINE|Calculated transition|Re-asking for the CIB|fenc|terminated|Result of (start|stop|monitor) operation",
			"/var/log/corosync/corosync.log", "/var/log/pacemaker/pacemaker.log")
		if err != nil && out == "" {
			t.Logf("logs of %s: %v", n, err)
			continue
		}
		lines = append(lines, strings.Split(out, "\n")...)
	}
	return lines
}

// restore powers a fenced victim on again and waits for a full cluster:
// the node back, the Consul clone tolerating a server's loss again, the
// lb clone everywhere.
func restore(t *testing.T, c *harness.Cluster, view, victim string) {
	t.Helper()
	c.Start(victim)
	c.WaitReady(3 * time.Minute)
	waitConsulStarted(t, c, view, c.Nodes, 3*time.Minute)
	// The rejoined server is a non-voter until autopilot finds it stable
	// (10s): losing another server before that loses the Raft quorum, and
	// the directory with it.
	waitConsulTolerant(t, c, view, 3*time.Minute)
	waitLBStarted(t, c, view, c.Nodes, 2*time.Minute)
}

// settle waits, up to within, until the cluster has nothing in flight and
// nothing left to do, as view sees it: the DC idle (crmadmin -S says
// S_IDLE: no transition running), the scheduler planning no action
// (crm_resource --wait), and the DC still idle after that. Cleaning up a
// resource's history (crm_resource --cleanup) while the DC's transition
// still waits for one of its operations leaves that transition waiting out
// the operation's timeout, the resource shown Stopped meanwhile: after a
// failure, settle, then clean up. It logs what it waits for every 5 s, and
// how long it took.
func settle(t *testing.T, c *harness.Cluster, view string, within time.Duration) {
	t.Helper()
	start, shown := time.Now(), time.Now()
	c.WaitFor(within, "cluster settled (DC idle, no action pending)", func() (bool, string) {
		why := settled(c, view)
		if why != "" && time.Since(shown) >= 5*time.Second {
			shown = time.Now()
			t.Logf("settling for %s: %s", time.Since(start).Round(time.Second), why)
		}
		return why == "", why
	})
	t.Logf("settled in %s", time.Since(start).Round(100*time.Millisecond))
}

// settled says what the cluster is still doing, "" for nothing.
func settled(c *harness.Cluster, view string) string {
	s, err := c.Status(view)
	switch {
	case err != nil:
		return err.Error()
	case s.DC == "":
		return "no DC"
	}
	idle := func() string {
		out, err := c.Exec(view, "crmadmin", "-q", "-S", s.DC)
		if err != nil {
			return err.Error()
		}
		if state := strings.TrimSpace(out); state != "S_IDLE" {
			return fmt.Sprintf("DC %s in state %s", s.DC, harness.TailLines(state, 1))
		}
		return ""
	}
	if why := idle(); why != "" {
		return why
	}
	if _, err := c.Exec(view, "crm_resource", "--wait", "--timeout=5s"); err != nil {
		return "actions pending: " + err.Error()
	}
	return idle()
}

// waitConsulTolerant waits until Consul's autopilot reports a healthy
// cluster that survives the loss of one server.
func waitConsulTolerant(t *testing.T, c *harness.Cluster, view string, within time.Duration) {
	t.Helper()
	c.WaitFor(within, "consul autopilot healthy, failure tolerance 1", func() (bool, string) {
		out, err := consulGet(c, view, "/v1/operator/autopilot/health")
		if err != nil {
			return false, err.Error()
		}
		var h struct {
			Healthy          bool
			FailureTolerance int
		}
		if err := json.Unmarshal([]byte(out), &h); err != nil {
			return false, err.Error()
		}
		return h.Healthy && h.FailureTolerance >= 1, out
	})
}

func envInt(t *testing.T, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", key, v)
	}
	return n
}

// report prints the distributions of one kind of fault; over the goal is
// reported, not failed: this is a measurement.
func report(t *testing.T, what string, os []outage, goal time.Duration) {
	t.Helper()
	if len(os) == 0 {
		t.Logf("BENCH %s: no runs", what)
		return
	}
	var served, gaps []time.Duration
	failed, never, over := 0, 0, 0
	for _, o := range os {
		failed += o.failed
		if o.recovered == 0 {
			never++
			continue
		}
		served = append(served, o.sinceFault())
		gaps = append(gaps, o.gap)
		if o.sinceFault() > goal {
			over++
		}
	}
	line := fmt.Sprintf("BENCH %-38s runs=%d fault→served ms %s | longest time without an answer ms %s | failed requests %d (%.1f/run) | goal <%s: %d over, %d never served",
		what, len(os), dist(served), dist(gaps), failed, float64(failed)/float64(len(os)), goal, over, never)
	t.Log(line)
	fmt.Println(line)
}

// dist is min/p50/max in ms.
func dist(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	return fmt.Sprintf("min=%d p50=%d max=%d", ms(s[0]), ms(s[len(s)/2]), ms(s[len(s)-1]))
}
