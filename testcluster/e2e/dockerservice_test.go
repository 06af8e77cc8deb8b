//go:build e2e

// docker-service on a 3-node cluster whose nodes run their own Docker
// Engine (harness.Options.Docker), so that a container dies with its node:
// a container registered in Consul, served through the haproxy-dynamic
// clone, follows the loss of its node.
//
// It takes several minutes (a node's power-on and Consul's removal of a
// critical registration included), so it runs only with
// HAFW_E2E_DOCKER_SERVICE=1, as make e2e-docker-service sets:
//
//	HAFW_E2E_DOCKER_SERVICE=1 testcluster/dockercluster/run-e2e.sh -run TestDockerServiceNodeLoss -v
package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

const (
	containerID = "websvc"            // the docker-service resource, and so its container's name
	webEnvFile  = "/etc/hafw-web.env" // its env_file on every node
)

// webImage builds the image of docker-service's test server (FROM scratch,
// a static Go binary answering / with $NAME) in this host's engine, under
// a tag of this test's own, removed when the test ends. Its Registrator
// labels name the service web and its HTTP check, and have Consul remove
// an instance critical for a minute.
func webImage(t *testing.T) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-ldflags", "-s -w",
		"-o", filepath.Join(dir, "server"), "./agents/docker-service/dockerservice/testdata/server")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test server: %v\n%s", err, out)
	}
	dockerfile := "FROM scratch\nCOPY server /server\n" +
		"LABEL SERVICE_NAME=web SERVICE_CHECK_HTTP=/health SERVICE_CHECK_INTERVAL=1s SERVICE_CHECK_DEREGISTER_AFTER=1m\n" +
		`CMD ["/server"]` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := "hafw-e2e-web:" + harness.RandomHex(3)
	// The classic builder: Debian's dockerd 20.10 has no BuildKit.
	cmd := exec.Command("docker", "build", "-q", "-t", ref, dir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build %s: %v\n%s", ref, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("docker", "rmi", ref).CombinedOutput(); err != nil {
			t.Logf("docker rmi %s: %v\n%s", ref, err, out)
		}
	})
	return ref
}

// waitContainerOn waits until view sees the docker-service resource
// Started on one node (not one of avoid) and that node's engine runs its
// container, and returns the node.
func waitContainerOn(t *testing.T, c *harness.Cluster, view string, avoid []string, within time.Duration) string {
	t.Helper()
	var at string
	c.WaitFor(within, containerID+" Started", func() (bool, string) {
		s, err := c.Status(view)
		if err != nil {
			return false, err.Error()
		}
		on, roles := s.Resources[containerID], s.Roles[containerID]
		why := fmt.Sprintf("%s on %v %v", containerID, on, roles) + failures(s, containerID)
		if len(on) != 1 || slices.Contains(avoid, on[0]) || roles[0] != "Started" {
			return false, why
		}
		if running, err := containerRunning(c, on[0]); !running {
			return false, fmt.Sprintf("%s; its container on %s: %v", why, on[0], err)
		}
		at = on[0]
		return true, ""
	})
	return at
}

// containerRunning reports whether node's engine runs the resource's
// container, created by the agent (it carries the resource's label).
func containerRunning(c *harness.Cluster, node string) (bool, error) {
	out, err := c.Exec(node, "docker", "inspect", "-f", `{{.State.Running}} {{index .Config.Labels "org.ha-framework.resource"}}`, containerID)
	if err != nil {
		return false, err
	}
	if out != "true "+containerID {
		return false, fmt.Errorf("running, label: %q", out)
	}
	return true, nil
}

// webEntry is one instance of service web in view's Consul.
type webEntry struct {
	Node, NodeAddr, ServiceAddr string
	Port                        int
	Passing                     bool // every check passes, the node's serfHealth included
	Checks                      string
}

// webEntries lists the catalog's instances of web with their health.
func webEntries(c *harness.Cluster, view string) ([]webEntry, error) {
	out, err := consulGet(c, view, "/v1/health/service/web")
	if err != nil {
		return nil, err
	}
	var raw []struct {
		Node    struct{ Node, Address string }
		Service struct {
			Address string
			Port    int
		}
		Checks []struct{ CheckID, Status string }
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		return nil, err
	}
	var es []webEntry
	for _, r := range raw {
		e := webEntry{Node: r.Node.Node, NodeAddr: r.Node.Address, ServiceAddr: r.Service.Address, Port: r.Service.Port, Passing: true}
		var cs []string
		for _, ch := range r.Checks {
			cs = append(cs, ch.CheckID+"="+ch.Status)
			e.Passing = e.Passing && ch.Status == "passing"
		}
		e.Checks = strings.Join(cs, ",")
		es = append(es, e)
	}
	return es, nil
}

func (e webEntry) String() string {
	return fmt.Sprintf("%s (%s) %s:%d [%s]", e.Node, e.NodeAddr, e.ServiceAddr, e.Port, e.Checks)
}

// waitWebPassingOn waits until view's Consul has web passing on node
// alone, at node's cluster address and port 8080, and returns the catalog.
func waitWebPassingOn(t *testing.T, c *harness.Cluster, view, node string, within time.Duration) []webEntry {
	t.Helper()
	var es []webEntry
	c.WaitFor(within, "web passing on "+node+" alone", func() (bool, string) {
		var err error
		if es, err = webEntries(c, view); err != nil {
			return false, err.Error()
		}
		var passing []webEntry
		for _, e := range es {
			if e.Passing {
				passing = append(passing, e)
			}
		}
		why := fmt.Sprintf("catalog %v", es)
		if len(passing) != 1 || passing[0].Node != node {
			return false, why
		}
		p := passing[0]
		// No service address: Consul gives the node's, which is its
		// agent's cluster address, never a container's or 127.0.1.1.
		if p.NodeAddr != c.IPs[node] || (p.ServiceAddr != "" && p.ServiceAddr != c.IPs[node]) || p.Port != 8080 {
			t.Errorf("web on %s registered as %s, want %s:8080", node, p, c.IPs[node])
		}
		return true, ""
	})
	return es
}

func TestDockerServiceNodeLoss(t *testing.T) {
	if os.Getenv("HAFW_E2E_DOCKER_SERVICE") != "1" {
		t.Skip("long scenario: set HAFW_E2E_DOCKER_SERVICE=1 (make e2e-docker-service)")
	}
	image := webImage(t)
	start := time.Now()
	// Each node starts its engine before corosync: on a loaded machine
	// the cluster takes longer to form than the default allows.
	c := up(t, &harness.Options{Fencing: true, Docker: true, ReadyTimeout: 6 * time.Minute,
		Files: map[string]string{consulBinary(t): consulInNode}})
	t.Logf("timing: cluster with an engine per node up in %s", time.Since(start).Round(100*time.Millisecond))
	c.EnableFencing()
	loaded := time.Now()
	c.LoadImage(image)
	t.Logf("timing: image %s loaded into %d nodes in %s", image, len(c.Nodes), time.Since(loaded).Round(100*time.Millisecond))
	for _, n := range c.Nodes {
		// The server says which node it runs on; env_file follows the
		// rules of secret files (root, 0600).
		script := "umask 077; printf 'ADDR=0.0.0.0:8080\\nNAME=%s\\n' \"$(uname -n)\" > " + webEnvFile
		if out, err := c.Exec(n, "sh", "-c", script); err != nil {
			t.Fatalf("%s: writing %s: %v\n%s", n, webEnvFile, err, out)
		}
	}
	createConsulClone(t, c)
	created := time.Now()
	createLB(t, c)
	n0 := c.Nodes[0]
	for _, args := range [][]string{
		{"pcs", "resource", "create", containerID, "ocf:ha-framework:docker-service", "image=" + image, "pull=never", "network=host",
			"env_file=" + webEnvFile, "check_http=http://127.0.0.1:8080/health", "register=true", "service_port=8080",
			"op", "monitor", "interval=5s", "timeout=20s"},
		{"pcs", "resource", "meta", containerID, "resource-stickiness=100"},
		{"pcs", "constraint", "order", "start", "consul-clone", "then", containerID},
		{"pcs", "constraint", "colocation", "add", containerID, "with", "consul-clone"},
	} {
		if out, err := c.Exec(n0, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	waitLBStarted(t, c, n0, c.Nodes, 2*time.Minute)
	at := waitContainerOn(t, c, n0, nil, 2*time.Minute)
	for _, n := range others(c, at) {
		if running, _ := containerRunning(c, n); running {
			t.Errorf("container %s runs on %s too", containerID, n)
		}
	}
	waitWebPassingOn(t, c, others(c, at)[0], at, time.Minute)
	waitServed(t, c, others(c, at), at, time.Minute)
	t.Logf("timing: %s runs on %s, web passing there and served by every other node's proxy %s after create",
		containerID, at, time.Since(created).Round(100*time.Millisecond))

	// Node loss, with a client on another node calling its local proxy.
	victim, survivors := at, others(c, at)
	clientNode := survivors[0]
	cl := startClient(t, c, clientNode, victim)
	time.Sleep(3 * time.Second) // a baseline of successes
	t.Logf("killing %s (runs %s; %s); client on %s", victim, containerID, consulRole(c, clientNode, victim), clientNode)
	fault := nowMs()
	c.Kill(victim)
	killed := time.Now()
	cl.fault(t, fault)
	waitFenced(t, c, clientNode, victim, 2*time.Minute)
	t.Logf("timing: %s fenced %s after the kill", victim, time.Since(killed).Round(100*time.Millisecond))
	now := waitContainerOn(t, c, clientNode, []string{victim}, 2*time.Minute)
	t.Logf("timing: %s Started on %s, its container running, %s after the kill", containerID, now, time.Since(killed).Round(100*time.Millisecond))
	view := others(c, now)[0]
	if view == victim {
		view = others(c, now)[1]
	}
	es := waitWebPassingOn(t, c, view, now, time.Minute)
	t.Logf("timing: web passing on %s alone (seen from %s) %s after the kill; catalog %v",
		now, view, time.Since(killed).Round(100*time.Millisecond), es)
	for _, e := range es {
		if e.Node == victim && e.Passing {
			t.Errorf("the lost node's instance is passing: %s", e)
		}
	}
	o, _ := cl.wait(t, fault, victim)
	t.Logf("timing: client on %s through haproxy-dynamic: %s", clientNode, o)
	switch {
	case o.before != victim:
		t.Errorf("before the kill the client was served by %q, want %s", o.before, victim)
	case o.recovered == 0:
		t.Errorf("web never served again within the client's %ss", clientMax)
	case o.after != now:
		t.Errorf("served again by %q, want %s, where Pacemaker runs it", o.after, now)
	}

	// The lost node comes back: its container stays stopped (restart
	// policy no), the resource stays where it runs, untouched, and the
	// registration its Consul agent restores is withdrawn by the probe,
	// or (if the probe ran before Consul was back) removed by Consul once
	// critical for deregister_critical_service_after.
	running, err := c.Exec(now, "docker", "inspect", "-f", "{{.Id}}", containerID)
	if err != nil {
		t.Fatal(err)
	}
	c.Start(victim)
	powered := time.Now()
	c.WaitReady(3 * time.Minute)
	waitConsulStarted(t, c, view, c.Nodes, 3*time.Minute)
	t.Logf("timing: %s rejoined, consul Started there, %s after power-on", victim, time.Since(powered).Round(100*time.Millisecond))
	var stale time.Time
	c.WaitFor(4*time.Minute, "the lost node's registration removed", func() (bool, string) {
		es, err := webEntries(c, view)
		if err != nil {
			return false, err.Error()
		}
		found := false
		for _, e := range es {
			if e.Node != victim {
				continue
			}
			found = true
			if e.Passing {
				t.Errorf("the returned node's stale instance is passing: %s", e)
			}
			if stale.IsZero() && !strings.Contains(e.Checks, "serfHealth=critical") {
				stale = time.Now()
				t.Logf("timing: %s's agent is back with its registration, checks %s, %s after power-on", victim, e.Checks, time.Since(powered).Round(100*time.Millisecond))
			}
		}
		return !found, fmt.Sprintf("catalog %v", es)
	})
	// Which way it went: the probe withdrew it, or Consul's reaper did (or
	// Consul's autopilot had removed the lost server with its services).
	how := "not by a probe"
	if out, _ := c.Exec(victim, "grep", "-c", "-e", "still registered; registration withdrawn", "-e", "withdrew the registration Consul restored",
		"/var/log/pacemaker/pacemaker.log"); out != "0" && out != "" {
		how = "withdrawn by the probe"
	}
	t.Logf("timing: %s's registration gone from the catalog %s after power-on (%s)", victim, time.Since(powered).Round(100*time.Millisecond), how)
	if running, _ := containerRunning(c, victim); running {
		t.Errorf("container %s runs again on the returned %s", containerID, victim)
	}
	if got := waitContainerOn(t, c, view, nil, 30*time.Second); got != now {
		t.Errorf("%s moved to %s after %s came back, want it to stay on %s", containerID, got, victim, now)
	} else if id, err := c.Exec(now, "docker", "inspect", "-f", "{{.Id}}", containerID); err != nil || id != running {
		t.Errorf("the container on %s was replaced when %s came back: %s, was %s (%v)", now, victim, id, running, err)
	}
	waitWebPassingOn(t, c, view, now, 30*time.Second)
	waitServed(t, c, others(c, now), now, time.Minute)
}
