//go:build e2e

// The whole stack set up on a running 3-node cluster by one command,
// `crm script run ha-framework-stack`, from the crmsh script the nodes'
// package installed: Consul servers on every node (listed by name), the
// web service as docker-service in the nodes' own Docker Engines,
// registering itself, the haproxy-dynamic and openresty-gateway clones.
// It measures the time from the nodes' package install to the stack
// serving (timing: lines).
//
//	testcluster/dockercluster/run-e2e.sh -run TestStackScript -v
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
	"github.com/ha-framework/ha-framework/testcluster/stackfiles"
)

const (
	stackDir    = "/hafw/stack" // stackfiles' files in every node
	stackImage  = "hafw-stack-web:e2e"
	stackWeb    = "web" // docker-service resource, and the service's name in Consul
	stackLBURL  = "http://127.0.0.1:8081/"
	stackGWURL  = "https://127.0.0.1/web/"
	stackClient = "alice" // the subject the ACL allows
)

func TestStackScript(t *testing.T) {
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	err = stackfiles.BuildWebImage(ctx, root, stackImage)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := stackfiles.Write(dir, stackDir, nil, stackWeb, []string{stackClient})
	if err != nil {
		t.Fatal(err)
	}

	// The nodes install the package as they boot, before corosync starts.
	start := time.Now()
	// Each node starts its Docker Engine and installs the package before
	// corosync: on a loaded machine that takes minutes.
	c := up(t, &harness.Options{Docker: true, ReadyTimeout: 8 * time.Minute,
		Files: map[string]string{consulBinary(t): consulInNode, dir: stackDir}})
	formed := time.Since(start)
	t.Logf("timing: %d nodes booted, the package installed and the cluster formed in %s", len(c.Nodes), formed.Round(100*time.Millisecond))
	loading := time.Now()
	c.LoadImage(stackImage)
	t.Logf("timing: web image loaded into the nodes' engines in %s (a registry pull on a real cluster)", time.Since(loading).Round(100*time.Millisecond))

	n0 := c.Nodes[0]
	// The nodes run a Docker Engine, whose bridge is a second private
	// address: Consul needs the cluster one named. Back-quoted strings in
	// the template, since the value passes through crmsh's double quotes.
	bind := "{{ GetAllInterfaces | include `network` `" + clusterNetwork(t, c).String() + "` | attr `address` }}"
	args := []string{"crm", "script", "run", "ha-framework-stack",
		"consul:servers=" + strings.Join(c.Nodes, " "), "consul:binary=" + consulInNode, "consul:bind_addr=" + bind,
		"service:id=" + stackWeb, "service:image=" + stackImage, "service:pull=never", "service:network=host",
		"service:service_name=" + stackWeb, fmt.Sprintf("service:service_port=%d", stackfiles.WebPort),
		fmt.Sprintf("service:check_http=http://127.0.0.1:%d/health", stackfiles.WebPort),
		"proxy:routes=" + stackWeb + "=127.0.0.1:8081/http",
		"gateway:routes=/web/=" + stackWeb + "=127.0.0.1:8081",
		"gateway:tls_cert_file=" + files.Cert, "gateway:tls_key_file=" + files.Key, "gateway:jwt_policy_file=" + files.Policy,
	}
	t.Logf("on %s: %s", n0, quoteArgs(args))
	run := time.Now()
	// crm returns once the cluster has settled (its actions run crm --wait):
	// on a loaded machine, more than Exec's two minutes.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Minute)
	out, err := c.Command(ctx, n0, args...).CombinedOutput()
	cancel()
	if err != nil {
		t.Fatalf("crm script run: %v\n%s", err, out)
	}
	t.Logf("timing: crm script run returned in %s", time.Since(run).Round(100*time.Millisecond))
	// When the CIB took the configuration: crmsh then waits (crm --wait)
	// until the cluster has settled, every resource started.
	committed, err := cibWritten(c, n0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("timing: crm script run committed the configuration %s after it began", committed.Sub(run).Round(time.Second))

	// The ACL of the service, once Consul takes writes.
	c.WaitFor(2*time.Minute, "acl/"+stackWeb+" written to Consul KV", func() (bool, string) {
		out, err := c.Exec(n0, "curl", "-sf", "-m", "5", "-X", "PUT", "--data-binary", "@"+files.ACL, "http://127.0.0.1:8500/v1/kv/acl/"+stackWeb)
		return err == nil && strings.TrimSpace(out) == "true", strings.TrimSpace(out)
	})

	for _, id := range []string{consulID, "lb", "gw"} {
		waitStarted(t, c, n0, id, c.Nodes, 3*time.Minute)
	}
	at := waitStarted(t, c, n0, stackWeb, nil, 3*time.Minute)
	c.WaitFor(time.Minute, stackWeb+" registered on "+at+" and passing", func() (bool, string) {
		nodes, err := passingNodes(c, n0, stackWeb)
		return err == nil && slices.Equal(nodes, []string{at}), fmt.Sprintf("passing on %v %v", nodes, err)
	})
	other := others(c, at)[0]
	c.WaitFor(time.Minute, "the proxy on "+other+" serves "+stackWeb+" from "+at, func() (bool, string) {
		out, err := c.Exec(other, "curl", "-sf", "-m", "5", stackLBURL)
		return err == nil && out == at, fmt.Sprintf("%q %v", out, err)
	})
	tok, err := files.Token(stackClient, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c.WaitFor(time.Minute, "the gateway on "+other+" serves a valid token", func() (bool, string) {
		code, body := gatewayGet(c, other, files.CA, tok)
		return code == "200" && body == at, fmt.Sprintf("HTTP %s %q", code, body)
	})
	t.Logf("timing: whole stack running and serving %s after crm script run began, %s after its commit, %s after the nodes were created",
		time.Since(run).Round(100*time.Millisecond), time.Since(committed).Round(time.Second), time.Since(start).Round(100*time.Millisecond))

	if code, body := gatewayGet(c, other, files.CA, ""); code != "401" {
		t.Errorf("gateway without a token: HTTP %s %q, want 401", code, body)
	}
	s, err := c.Status(n0)
	if err != nil {
		t.Fatal(err)
	}
	// Consul's depth-10 monitor reports degraded (190) until the servers
	// elect their first leader: not a failure, and nothing is recovered.
	for _, f := range s.Failures {
		if f.ExitCode == 190 {
			t.Logf("degraded while starting: %s", f)
		} else if slices.Contains([]string{consulID, stackWeb, "lb", "gw"}, f.Resource) {
			t.Errorf("failed operation: %s", f)
		}
	}
}

// cibWritten is when the CIB's configuration last changed, as node's CIB
// says (cib-last-written, to the second, in the node's time zone, UTC).
func cibWritten(c *harness.Cluster, node string) (time.Time, error) {
	out, err := c.Exec(node, "sh", "-c", "cibadmin --query | head -n 1")
	if err != nil {
		return time.Time{}, err
	}
	_, rest, ok := strings.Cut(out, `cib-last-written="`)
	value, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		return time.Time{}, fmt.Errorf("no cib-last-written in %q", out)
	}
	return time.ParseInLocation("Mon Jan _2 15:04:05 2006", value, time.UTC)
}

// clusterNetwork is the cluster network as the first node's interfaces
// have it configured.
func clusterNetwork(t *testing.T, c *harness.Cluster) netip.Prefix {
	t.Helper()
	addrs, err := c.Exec(c.Nodes[0], "ip", "-4", "-o", "addr", "show")
	if err != nil {
		t.Fatalf("ip addr on %s: %v\n%s", c.Nodes[0], err, addrs)
	}
	network, err := networkOf(addrs, c.IPs[c.Nodes[0]])
	if err != nil {
		t.Fatalf("%s: %v", c.Nodes[0], err)
	}
	return network
}

// waitStarted waits until view sees every instance of the primitive id
// Started, on exactly the nodes on, or, with on nil, one instance Started
// on any node, and returns the node of the first instance.
func waitStarted(t *testing.T, c *harness.Cluster, view, id string, on []string, within time.Duration) string {
	t.Helper()
	want := slices.Clone(on)
	slices.Sort(want)
	what := id + " Started on " + strings.Join(want, ",")
	if on == nil {
		what = id + " Started"
	}
	var first string
	c.WaitFor(within, what, func() (bool, string) {
		s, err := c.Status(view)
		if err != nil {
			return false, err.Error()
		}
		got := slices.Clone(s.Resources[id])
		slices.Sort(got)
		why := "active on [" + strings.Join(got, ",") + "], roles " + strings.Join(s.Roles[id], ",") + failures(s, id)
		for _, r := range s.Roles[id] {
			if r != "Started" {
				return false, why
			}
		}
		if on == nil && len(got) != 1 || on != nil && !slices.Equal(got, want) {
			return false, why
		}
		first = s.Resources[id][0]
		return true, why
	})
	return first
}

// passingNodes is the nodes of service's passing instances, as node's
// Consul agent sees them.
func passingNodes(c *harness.Cluster, node, service string) ([]string, error) {
	out, err := consulGet(c, node, "/v1/health/service/"+service+"?passing=1")
	if err != nil {
		return nil, err
	}
	var entries []struct{ Node struct{ Node string } }
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		return nil, err
	}
	var nodes []string
	for _, e := range entries {
		nodes = append(nodes, e.Node.Node)
	}
	return nodes, nil
}

// gatewayGet is the status code and body of a GET of the web route
// through the gateway on node, over TLS checked against ca, with token as
// the bearer token ("" for none).
func gatewayGet(c *harness.Cluster, node, ca, token string) (code, body string) {
	args := []string{"curl", "-s", "-m", "5", "--cacert", ca, "-w", "\n%{http_code}"}
	if token != "" {
		args = append(args, "-H", "Authorization: Bearer "+token)
	}
	out, err := c.Exec(node, append(args, stackGWURL)...)
	if err != nil {
		return "error", err.Error()
	}
	i := strings.LastIndex(out, "\n")
	return out[i+1:], strings.TrimSpace(out[:max(i, 0)])
}

// quoteArgs is args as a shell would need them, for the log.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " `{}|\"'$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
