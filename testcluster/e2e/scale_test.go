//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

// scaleInterval is the monitor interval of every registration:
// HAFW_BENCH_SCALE_INTERVAL, default Pacemaker's usual 10s.
var scaleInterval = 10 * time.Second

// TestBenchScaleRegistrations measures what many registrations cost their
// nodes: HAFW_BENCH_SCALE registrations (default 200) of one service, each
// with a TTL check its monitor refreshes (every HAFW_BENCH_SCALE_INTERVAL,
// default 10s), on the 3-node cluster with the
// Consul clone. The figure is the CPU time of pacemaker-execd's children
// (cutime+cstime in /proc/PID/stat: every agent run that execd reaped, with
// whatever those runs forked and waited for), per node per minute, over a
// window of HAFW_BENCH_SCALE_WINDOW (default 60s), before the registrations
// exist (Consul's monitors only) and with them. Beside it, in the same run
// and on the same nodes, the CPU of one monitor call by hand: ours, the
// shell Dummy agent (the floor of any agent that sources ocf-shellfuncs),
// and a shell monitor that does our monitor's HTTP calls with curl; the
// shell figure times the calls per minute is labelled an estimate. It runs
// only with HAFW_BENCH_SCALE=1 (make bench-scale): a measurement, never a
// timed test.
func TestBenchScaleRegistrations(t *testing.T) {
	if os.Getenv("HAFW_BENCH_SCALE") != "1" {
		t.Skip("benchmark: set HAFW_BENCH_SCALE=1 (make bench-scale)")
	}
	n := envInt(t, "HAFW_BENCH_SCALE_N", 200)
	window, err := time.ParseDuration(harness.EnvOr("HAFW_BENCH_SCALE_WINDOW", "60s"))
	if err != nil || window < 10*time.Second {
		t.Fatalf("HAFW_BENCH_SCALE_WINDOW=%q: want a duration of at least 10s", os.Getenv("HAFW_BENCH_SCALE_WINDOW"))
	}
	// A loaded machine forms a cluster slowly: more than up's default wait.
	if v := os.Getenv("HAFW_BENCH_SCALE_INTERVAL"); v != "" {
		if scaleInterval, err = time.ParseDuration(v); err != nil || scaleInterval < time.Second || scaleInterval%time.Second != 0 {
			t.Fatalf("HAFW_BENCH_SCALE_INTERVAL=%q: want whole seconds, at least 1s", v)
		}
	}
	c := up(t, &harness.Options{ReadyTimeout: 8 * time.Minute, Files: map[string]string{consulBinary(t): consulInNode}})
	createConsulClone(t, c)
	n0 := c.Nodes[0]
	settle(t, c, n0, 2*time.Minute)

	baseline := execdChildrenCPU(t, c, window)

	// The nodes are containers on one host and read its load average:
	// on a shared, loaded host Pacemaker would throttle itself to one
	// action at a time, and 200 starts would take most of an hour.
	if out, err := c.Exec(n0, "crm_attribute", "--type", "crm_config", "--name", "load-threshold", "--update", "100000%"); err != nil {
		t.Fatalf("setting load-threshold: %v\n%s", err, out)
	}
	created := time.Now()
	createRegistrations(t, c, n0, n)
	t.Logf("timing: %d registrations created in one CIB transaction in %s", n, time.Since(created).Round(time.Millisecond))
	perNode := waitRegistrationsStarted(t, c, n0, n, 25*time.Minute)
	t.Logf("timing: %d registrations Started %s after create; per node %d, %d, %d", n, time.Since(created).Round(time.Second),
		len(perNode[c.Nodes[0]]), len(perNode[c.Nodes[1]]), len(perNode[c.Nodes[2]]))
	// The first monitors of all of them, then a steady state.
	time.Sleep(2 * scaleInterval)
	if got := passingInstances(t, c, n0); got != n {
		t.Errorf("Consul's catalog shows %d passing instances of scale, want %d", got, n)
	}

	// Failures of the start-up storm on a starved host are history; a
	// new one during the window would make its figure meaningless.
	failed := func() string {
		s, err := c.Status(n0)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		return s.FailuresOf(registrationIDs(n)...)
	}
	before := failed()
	if before != "" {
		t.Logf("failed operations before the window (start-up on a loaded host): %s", before)
	}
	loaded := execdChildrenCPU(t, c, window)
	if after := failed(); after != before {
		t.Errorf("operations failed during the window: %s", after)
	}

	// Per call, by hand, on each node: a registration of that node.
	const calls = 30
	t.Logf("%-8s %8s %12s %12s %12s %14s %14s %12s", "node", "regs", "base ms/min", "load ms/min", "regs ms/min",
		"ours ms/call", "shell ms/call", "Dummy ms/call")
	var totalOurs, totalShell float64
	for _, node := range c.Nodes {
		regs := perNode[node]
		if len(regs) == 0 {
			t.Logf("%-8s runs no registration", node)
			continue
		}
		env := registrationEnv(regs[0], node)
		ours := perCallCPU(t, c, node, calls, env, "/usr/lib/ocf/resource.d/ha-framework/directory-registration monitor")
		shell := perCallCPU(t, c, node, calls, env, "sh -c "+shellQuote(shellMonitor))
		dummy := perCallCPU(t, c, node, calls, append(env, "OCF_RESKEY_state=/run/hafw-scale-dummy.state"),
			"/usr/lib/ocf/resource.d/heartbeat/Dummy monitor")
		added := loaded[node] - baseline[node]
		t.Logf("%-8s %8d %12.0f %12.0f %12.0f %14.2f %14.2f %12.2f", node, len(regs), baseline[node], loaded[node], added, ours, shell, dummy)

		perMin := float64(len(regs)) * float64(time.Minute/scaleInterval)
		estOurs, estShell := ours*perMin, shell*perMin
		totalOurs += added
		totalShell += estShell
		t.Logf("%-8s %.0f monitor calls/min: measured %.0f ms CPU/min for them (by hand: %.0f ms); ESTIMATE for a shell agent doing the same calls: %.0f ms CPU/min (%.1fx ours), %.1f%% of one core",
			node, perMin, added, estOurs, estShell, estShell/added, estShell/float64(time.Minute.Milliseconds())*100)
	}
	t.Logf("BENCH scale: %d registrations, monitor every %s: measured %.0f ms CPU/min in total (%.2f%% of one core per node on average); ESTIMATE for shell agents: %.0f ms CPU/min",
		n, scaleInterval, totalOurs, totalOurs/float64(len(c.Nodes))/float64(time.Minute.Milliseconds())*100, totalShell)
}

// registrationIDs are the resource ids of the n registrations.
func registrationIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("scale-%03d", i)
	}
	return ids
}

// registrationAttrs are the instance parameters of registration id.
func registrationAttrs(id string) [][2]string {
	return [][2]string{
		{"service_name", "scale"}, {"service_id", id}, {"service_port", "8080"},
		{"check_ttl", strconv.Itoa(3*int(scaleInterval.Seconds())) + "s"}, {"drain_period", "0"},
	}
}

// createRegistrations adds n registrations to the CIB in one transaction:
// the resources section, read and replaced whole, so that the scheduler
// plans all of them at once (one pcs call each would take minutes).
func createRegistrations(t *testing.T, c *harness.Cluster, node string, n int) {
	t.Helper()
	section, err := c.Exec(node, "cibadmin", "--query", "--scope", "resources")
	if err != nil {
		t.Fatalf("reading the resources section: %v", err)
	}
	end := strings.LastIndex(section, "</resources>")
	if end < 0 {
		t.Fatalf("no </resources> in:\n%s", section)
	}
	var b strings.Builder
	b.WriteString(section[:end])
	for _, id := range registrationIDs(n) {
		fmt.Fprintf(&b, `<primitive id="%s" class="ocf" provider="ha-framework" type="directory-registration"><instance_attributes id="%s-ia">`, id, id)
		for _, kv := range registrationAttrs(id) {
			fmt.Fprintf(&b, `<nvpair id="%s-%s" name="%s" value="%s"/>`, id, kv[0], kv[0], kv[1])
		}
		// Generous timeouts: a starved host must not turn slow calls into
		// recoveries, which would add work to what is measured.
		fmt.Fprintf(&b, `</instance_attributes><operations><op id="%s-monitor" name="monitor" interval="%ds" timeout="60s"/>`+
			`<op id="%s-start" name="start" interval="0s" timeout="60s"/></operations></primitive>`,
			id, int(scaleInterval.Seconds()), id)
	}
	b.WriteString(section[end:])
	// docker exec gives the command no stdin: the XML reaches the node as
	// arguments, in pieces below the kernel's limit of one argument.
	const file, piece = "/run/hafw-scale-resources.xml", 64 << 10
	xml := b.String()
	for i := 0; i < len(xml); i += piece {
		op := ">>"
		if i == 0 {
			op = ">"
		}
		if out, err := c.Exec(node, "sh", "-c", `printf '%s' "$1" `+op+` `+file, "sh", xml[i:min(i+piece, len(xml))]); err != nil {
			t.Fatalf("writing %s: %v\n%s", file, err, out)
		}
	}
	if out, err := c.Exec(node, "cibadmin", "--replace", "--scope", "resources", "--xml-file", file); err != nil {
		t.Fatalf("cibadmin --replace --scope resources (%d bytes): %v\n%s", len(xml), err, out)
	}
}

// waitRegistrationsStarted waits until all n registrations are Started
// and returns them by node. It asks every 10 s, not every half second as
// Cluster.WaitFor does: crm_mon on a cluster of hundreds of resources
// costs the nodes more than the monitors being measured.
func waitRegistrationsStarted(t *testing.T, c *harness.Cluster, view string, n int, within time.Duration) map[string][]string {
	t.Helper()
	ids := registrationIDs(n)
	deadline := time.Now().Add(within)
	for {
		s, err := c.Status(view)
		why := ""
		if err != nil {
			why = err.Error()
		} else {
			byNode := map[string][]string{}
			started := 0
			for _, id := range ids {
				if on := s.Resources[id]; len(on) == 1 && len(s.Roles[id]) == 1 && s.Roles[id][0] == "Started" {
					started++
					byNode[on[0]] = append(byNode[on[0]], id)
				}
			}
			if started == n {
				return byNode
			}
			why = fmt.Sprintf("%d of %d Started%s", started, n, failures(s, ids...))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d registrations Started: not reached after %s: %s", n, within, why)
		}
		if len(why) > 300 {
			why = why[:300] + "..."
		}
		t.Logf("waiting: %s", why)
		time.Sleep(10 * time.Second)
	}
}

// passingInstances counts the passing instances of the service scale.
func passingInstances(t *testing.T, c *harness.Cluster, node string) int {
	t.Helper()
	out, err := consulGet(c, node, "/v1/health/service/scale?passing=1")
	if err != nil {
		t.Fatalf("Consul's health of scale: %v", err)
	}
	var entries []struct{ Service struct{ ID string } }
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("Consul's health of scale: %v", err)
	}
	return len(entries)
}

// execdChildrenCPU returns, per node, the CPU time in milliseconds per
// minute that pacemaker-execd's reaped children used over window: the
// growth of cutime+cstime, read at both ends of the window on every node.
func execdChildrenCPU(t *testing.T, c *harness.Cluster, window time.Duration) map[string]float64 {
	t.Helper()
	before := map[string]float64{}
	for _, n := range c.Nodes {
		before[n] = childrenTicks(t, c, n)
	}
	began := time.Now()
	time.Sleep(window)
	took := time.Since(began)
	out := map[string]float64{}
	for _, n := range c.Nodes {
		ms := (childrenTicks(t, c, n) - before[n]) * 1000 / clockTicks(t, c, n)
		out[n] = ms * float64(time.Minute) / float64(took)
	}
	return out
}

// childrenTicks is cutime+cstime of node's pacemaker-execd, in clock ticks.
func childrenTicks(t *testing.T, c *harness.Cluster, node string) float64 {
	t.Helper()
	out, err := c.Exec(node, "sh", "-c", "cat /proc/$(pgrep -x pacemaker-execd)/stat")
	if err != nil {
		t.Fatalf("pacemaker-execd's stat on %s: %v", node, err)
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, cutime and cstime are fields 16 and 17.
	i := strings.LastIndexByte(out, ')')
	f := strings.Fields(out[i+1:])
	if i < 0 || len(f) < 15 {
		t.Fatalf("pacemaker-execd's stat on %s: %q", node, out)
	}
	cu, err1 := strconv.ParseFloat(f[13], 64)
	cs, err2 := strconv.ParseFloat(f[14], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("pacemaker-execd's stat on %s: %q", node, out)
	}
	return cu + cs
}

func clockTicks(t *testing.T, c *harness.Cluster, node string) float64 {
	t.Helper()
	out, err := c.Exec(node, "getconf", "CLK_TCK")
	hz, perr := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil || perr != nil || hz <= 0 {
		t.Fatalf("getconf CLK_TCK on %s: %v %q", node, err, out)
	}
	return hz
}

// registrationEnv is what Pacemaker passes to a recurring monitor of
// registration id on node.
func registrationEnv(id, node string) []string {
	env := []string{"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=" + id, "OCF_RESKEY_CRM_meta_on_node=" + node,
		"OCF_RESKEY_CRM_meta_interval=" + strconv.Itoa(int(scaleInterval.Milliseconds())), "OCF_RESKEY_CRM_meta_timeout=60000",
		"HA_RSCTMP=/run/resource-agents", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, kv := range registrationAttrs(id) {
		env = append(env, "OCF_RESKEY_"+kv[0]+"="+kv[1])
	}
	return env
}

// shellMonitor is what a shell agent would run for the same depth-0
// monitor as ours, the way resource-agents' shell agents talk HTTP: source
// ocf-shellfuncs, read the agent's services, refresh the TTL check, read
// the checks, with curl.
const shellMonitor = `. ${OCF_ROOT}/lib/heartbeat/ocf-shellfuncs
api=http://127.0.0.1:8500/v1/agent
curl -sf -m 5 "$api/services" | grep -q "\"$OCF_RESKEY_service_id\"" || exit $OCF_NOT_RUNNING
curl -sf -m 5 -X PUT "$api/check/pass/service:$OCF_RESKEY_service_id" >/dev/null || exit $OCF_ERR_GENERIC
curl -sf -m 5 "$api/checks" | grep -q '"Status": *"critical"' && exit $OCF_ERR_GENERIC
exit $OCF_SUCCESS`

// perCallCPU runs command calls times on node under env (the calls in a
// bash loop, which forks nothing of its own) and returns the CPU time of
// one call in milliseconds: bash's times for its children. Every call
// must exit 0 (a failing call is often a cheap one); Dummy's monitor
// exits 7 (not started), which is accepted for it.
func perCallCPU(t *testing.T, c *harness.Cluster, node string, calls int, env []string, command string) float64 {
	t.Helper()
	ok := "0"
	if strings.Contains(command, "heartbeat/Dummy") {
		ok = "7"
	}
	script := fmt.Sprintf(`for ((i = 0; i < %d; i++)); do %s >/dev/null 2>&1; rc=$?; [ $rc = %s ] || { echo "call $i: exit $rc"; exit 1; }; done; times`,
		calls, command, ok)
	out, err := c.Exec(node, append(append([]string{"env", "-i"}, env...), "bash", "-c", script)...)
	if err != nil {
		t.Fatalf("%s on %s: %v", command, node, err)
	}
	// times prints the shell's user and system time, then its children's.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 2 {
		t.Fatalf("times on %s: %q", node, out)
	}
	total := 0.0
	for _, v := range f {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("times on %s: %q: %v", node, out, err)
		}
		total += float64(d) / float64(time.Millisecond)
	}
	return total / float64(calls)
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
