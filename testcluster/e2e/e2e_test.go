//go:build e2e

// Cluster-level scenarios: formation, failover after a node loss, a
// partition, fencing.
package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

func TestClusterForms(t *testing.T) {
	start := time.Now()
	c := up(t, nil)
	t.Logf("3-node cluster up in %s", time.Since(start).Round(100*time.Millisecond))

	out, err := c.Exec(c.Nodes[0], "pcs", "status")
	if err != nil {
		t.Fatalf("pcs status: %v\n%s", err, out)
	}
	if bad := unclean(out); len(bad) > 0 {
		t.Errorf("pcs status not clean: %q\n%s", bad, out)
	}
	for _, n := range c.Nodes {
		if !strings.Contains(out, n) {
			t.Errorf("pcs status does not name %s:\n%s", n, out)
		}
	}
	out, err = c.Exec(c.Nodes[1], "corosync-quorumtool", "-s")
	if err != nil || !strings.Contains(out, "Quorate:          Yes") || !strings.Contains(out, "Total votes:      3") {
		t.Errorf("corosync-quorumtool -s: %v\n%s", err, out)
	}
	if mem, err := c.Memory(); err != nil {
		t.Logf("memory: %v", err)
	} else {
		for _, n := range c.Nodes {
			t.Logf("memory of %s: %s", n, mem[n])
		}
	}
}

// unclean lists the lines of pcs status that report trouble. Without an
// init system pcs prints "Daemon Status: ... inactive/disabled" and a
// warning that it cannot detect one: expected here, so ignored.
func unclean(status string) []string {
	var bad []string
	for _, line := range strings.Split(status, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "unable to detect init system") {
			continue
		}
		for _, word := range []string{"offline", "unclean", "failed", "error", "stopped", "warning", "without quorum"} {
			if strings.Contains(l, word) {
				bad = append(bad, strings.TrimSpace(line))
				break
			}
		}
	}
	return bad
}

func TestFailoverAfterKill(t *testing.T) {
	c := up(t, nil)
	const id = "ex"
	createExample(t, c, c.Nodes[0], id)
	victim := onlyNode(t, c, c.Nodes[0], id)
	survivors := others(c, victim)

	c.Kill(victim)
	killed := time.Now()
	var at string
	c.WaitFor(2*time.Minute, id+" started on a survivor", func() (bool, string) {
		s, err := c.Status(survivors[0])
		if err != nil {
			return false, err.Error()
		}
		on := s.Resources[id]
		if len(on) == 1 && on[0] != victim && s.Roles[id][0] == "Started" {
			at = on[0]
			return true, ""
		}
		return false, "running on " + strings.Join(on, ",")
	})
	t.Logf("failover: %s killed, %s Started on %s after %s", victim, id, at, time.Since(killed).Round(100*time.Millisecond))
	if got := reallyRunning(t, c, survivors, id); !slices.Equal(got, []string{at}) {
		t.Errorf("agent's own monitor: %s runs on %v, want [%s]", id, got, at)
	}
}

func TestPartitionStopsMinority(t *testing.T) {
	c := up(t, nil)
	const id = "ex"
	createExample(t, c, c.Nodes[0], id)
	minority := onlyNode(t, c, c.Nodes[0], id) // the partitioned node runs it
	majority := others(c, minority)

	c.Partition(minority)
	cut := time.Now()
	c.WaitFor(2*time.Minute, "minority without quorum, resource stopped there", func() (bool, string) {
		s, err := c.Status(minority)
		if err != nil {
			return false, err.Error()
		}
		if s.Quorum {
			return false, "minority still has quorum"
		}
		for _, n := range majority {
			if s.Nodes[n].Online {
				return false, "minority still sees " + n
			}
		}
		return len(s.Resources[id]) == 0, "minority still runs " + id
	})
	t.Logf("minority %s lost quorum and stopped %s after %s", minority, id, time.Since(cut).Round(100*time.Millisecond))
	c.WaitFor(2*time.Minute, "majority runs the resource", func() (bool, string) {
		s, err := c.Status(majority[0])
		if err != nil {
			return false, err.Error()
		}
		on := s.Resources[id]
		return s.Quorum && len(on) == 1 && slices.Contains(majority, on[0]), "running on " + strings.Join(on, ",")
	})
	t.Logf("majority runs %s again %s after the cut", id, time.Since(cut).Round(100*time.Millisecond))
	// Pacemaker's belief is not enough: ask the agent itself on every node.
	if got := reallyRunning(t, c, c.Nodes, id); len(got) != 1 || got[0] == minority {
		t.Errorf("agent's own monitor: %s runs on %v, want exactly one majority node", id, got)
	}

	c.Heal(minority)
	c.WaitReady(2 * time.Minute)
	if out, err := c.Exec(c.Nodes[0], "crm_resource", "--wait", "--timeout=60s"); err != nil {
		t.Fatalf("cluster did not settle after heal: %v\n%s", err, out)
	}
	if got := reallyRunning(t, c, c.Nodes, id); len(got) != 1 {
		t.Errorf("after heal %s runs on %v, want exactly one node", id, got)
	}
}

func TestFencing(t *testing.T) {
	c := up(t, &harness.Options{Fencing: true})
	c.EnableFencing()
	c.WaitFor(time.Minute, "stonith device started", func() (bool, string) {
		s, err := c.Status(c.Nodes[0])
		if err != nil {
			return false, err.Error()
		}
		return len(s.Resources[harness.FenceDevice]) == 1, "device on " + strings.Join(s.Resources[harness.FenceDevice], ",")
	})
	victim, fencer := c.Nodes[2], c.Nodes[0]
	start := time.Now()
	if out, err := c.Exec(fencer, "stonith_admin", "--reboot", victim, "--timeout", "60"); err != nil {
		t.Fatalf("stonith_admin --reboot %s: %v\n%s", victim, err, out)
	}
	t.Logf("%s fenced %s in %s", c.Backend.Kind(), victim, time.Since(start).Round(100*time.Millisecond))
	if running, _, err := c.Running(victim); err != nil || running {
		t.Fatalf("%s still running after fencing (err %v)", victim, err)
	}
	out, _ := c.Exec(fencer, "stonith_admin", "--history", victim)
	if !strings.Contains(out, "successful") {
		t.Errorf("fencing history does not show a success:\n%s", out)
	}
	c.Start(victim)
	c.WaitReady(2 * time.Minute)
	t.Logf("%s powered on again and rejoined %s after the fencing", victim, time.Since(start).Round(100*time.Millisecond))

	t.Run("partitioned node is fenced by the majority", func(t *testing.T) {
		const id = "ex"
		createExample(t, c, c.Nodes[0], id)
		victim := onlyNode(t, c, c.Nodes[0], id)
		c.Partition(victim)
		cut := time.Now()
		c.WaitFor(2*time.Minute, victim+" fenced", func() (bool, string) {
			running, _, err := c.Running(victim)
			return err == nil && !running, "still running"
		})
		t.Logf("partitioned %s fenced (powered off) %s after the cut", victim, time.Since(cut).Round(100*time.Millisecond))
		rest := others(c, victim)
		c.WaitFor(2*time.Minute, id+" recovered on the majority", func() (bool, string) {
			s, err := c.Status(rest[0])
			if err != nil {
				return false, err.Error()
			}
			on := s.Resources[id]
			return len(on) == 1 && on[0] != victim, "running on " + strings.Join(on, ",")
		})
		t.Logf("%s recovered on the majority %s after the cut", id, time.Since(cut).Round(100*time.Millisecond))
		// A node powered on again starts without the DROP rules (a container
		// gets a new network namespace, a VM boots without them).
		c.Start(victim)
		c.WaitReady(2 * time.Minute)
		if out, err := c.Exec(c.Nodes[0], "crm_resource", "--wait", "--timeout=60s"); err != nil {
			t.Fatalf("cluster did not settle: %v\n%s", err, out)
		}
		if got := reallyRunning(t, c, c.Nodes, id); len(got) != 1 {
			t.Errorf("after the fenced node rejoined, %s runs on %v, want exactly one node", id, got)
		}
	})
}

// createExample creates an ocf:ha-framework:example resource and waits
// until it runs.
func createExample(t *testing.T, c *harness.Cluster, node, id string) {
	t.Helper()
	out, err := c.Exec(node, "pcs", "resource", "create", id, "ocf:ha-framework:example", "label="+id,
		"op", "monitor", "interval=2s", "--wait=60")
	if err != nil {
		t.Fatalf("pcs resource create: %v\n%s", err, out)
	}
}

// onlyNode is the node where node's view says id runs, failing unless
// it runs on exactly one.
func onlyNode(t *testing.T, c *harness.Cluster, node, id string) string {
	t.Helper()
	s, err := c.Status(node)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Resources[id]) != 1 {
		t.Fatalf("%s runs on %v, want one node", id, s.Resources[id])
	}
	return s.Resources[id][0]
}

// reallyRunning asks the agent itself, on each node, whether id runs there
// (crm_resource --force-check runs its monitor locally: 0 running, 7 not).
func reallyRunning(t *testing.T, c *harness.Cluster, nodes []string, id string) []string {
	t.Helper()
	var on []string
	for _, n := range nodes {
		out, err := c.Exec(n, "crm_resource", "--force-check", "--resource", id)
		switch harness.ExitCode(err) {
		case 0:
			on = append(on, n)
		case 7:
		default:
			t.Errorf("monitor of %s on %s: %v\n%s", id, n, err, out)
		}
	}
	return on
}
