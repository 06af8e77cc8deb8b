//go:build integration

package consultest

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCluster starts three real servers on loopback, stops the leader, and
// checks that the other two elect a new one that accepts writes, that the
// stopped server comes back into the cluster, and that killing a follower
// leaves the leader in place.
func TestCluster(t *testing.T) {
	bin := Binary(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("Consul v1.20.6")) {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}

	start := time.Now()
	c := StartCluster(t, 3, nil)
	t.Logf("3 servers up with leader in %s", time.Since(start).Round(time.Millisecond))
	leader := c.WaitLeader(time.Second)
	t.Logf("leader: %s; RSS of one server agent: %s", c.Agents[leader].Name, vmRSS(t, c.Agents[leader].PID()))
	put(t, c.Agents[leader], "/v1/kv/consultest/before", "1")

	start = time.Now()
	c.Stop(leader)
	stopped := time.Since(start)
	next := c.WaitLeader(30 * time.Second)
	t.Logf("stopped leader %s in %s; %s leads after %s",
		c.Agents[leader].Name, stopped.Round(time.Millisecond), c.Agents[next].Name, time.Since(start).Round(time.Millisecond))
	if next == leader {
		t.Fatalf("stopped agent %s still reported as leader", c.Agents[leader].Name)
	}
	for i, a := range c.Agents {
		if i != leader {
			put(t, a, "/v1/kv/consultest/after", "2") // forwarded to the new leader: quorum holds
		}
	}

	start = time.Now()
	c.Restart(leader)
	got := c.WaitLeader(30 * time.Second)
	t.Logf("restarted %s; all three agree on leader %s after %s",
		c.Agents[leader].Name, c.Agents[got].Name, time.Since(start).Round(time.Millisecond))
	if b, err := get(c.Agents[leader], "/v1/kv/consultest/after?raw"); err != nil || string(b) != "2" {
		t.Errorf("restarted agent reads consultest/after = %q, %v; want 2", b, err)
	}

	follower := (got + 1) % len(c.Agents)
	c.Kill(follower)
	if l := c.WaitLeader(5 * time.Second); l != got {
		t.Errorf("leader moved from %s to %s when follower %s was killed", c.Agents[got].Name, c.Agents[l].Name, c.Agents[follower].Name)
	}
}

// TestDevServer starts a single -dev server.
func TestDevServer(t *testing.T) {
	start := time.Now()
	c := StartServer(t, &Options{Dev: true})
	t.Logf("dev server up with leader in %s", time.Since(start).Round(time.Millisecond))
	put(t, c.Agents[0], "/v1/kv/consultest/dev", "x")
}

func put(t *testing.T, a *Agent, path, value string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, a.URL()+path, bytes.NewReader([]byte(value)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("PUT %s on %s: %v", path, a.Name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s on %s: %s", path, a.Name, resp.Status)
	}
}

// vmRSS reads VmRSS from /proc/<pid>/status.
func vmRSS(t *testing.T, pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// TestPortTaken: an agent whose port is taken exits, and start-up reports it
// as errPortTaken (which StartCluster retries with other ports).
func TestPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ports := FreePorts(t, 3)
	dir := t.TempDir()
	a := &Agent{
		Name: nodePrefix(t.Name()), HTTPPort: l.Addr().(*net.TCPAddr).Port,
		SerfLANPort: ports[0], SerfWANPort: ports[1], ServerPort: ports[2],
		Dir: dir, DataDir: filepath.Join(dir, "data"), LogFile: filepath.Join(dir, "consul.log"),
	}
	c := &Cluster{Agents: []*Agent{a}, t: t, bin: Binary(t), opts: Options{LogLevel: "info", StopTimeout: 10 * time.Second}}
	t.Cleanup(c.stopAll)
	if err := c.writeConfig(a, 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := c.startAgent(0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.awaitLeader(30*time.Second, []int{0}); !errors.Is(err, errPortTaken) {
		t.Fatalf("awaitLeader: %v, want errPortTaken", err)
	}
}
