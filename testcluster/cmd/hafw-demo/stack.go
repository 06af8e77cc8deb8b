package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
	"github.com/ha-framework/ha-framework/testcluster/stackfiles"
)

// createStack sets up the whole stack with one crm script run, puts the
// service's ACL into Consul KV, and waits for each part.
func (d *demo) createStack() {
	t := d.fatal()
	n0 := d.c.Nodes[0]
	network, err := exec.Command("docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", d.c.Name).Output()
	if err != nil || len(strings.Fields(string(network))) == 0 {
		t.Fatalf("the cluster network's subnet: %v %s", err, network)
	}
	args := d.scriptArgs(strings.Fields(string(network))[0])
	d.p.Printf("  on %s: %s", n0, quote(args))
	start := time.Now()
	// Its own bound: crmsh takes more than Exec's two minutes on a loaded
	// machine.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	out, err := d.c.Command(ctx, n0, args...).CombinedOutput()
	cancel()
	if err != nil {
		t.Fatalf("crm script run: %v\n%s", err, harness.TailLines(string(out), 20))
	}
	d.p.Printf("  crm script run returned in %s (the pcs commands doing the same: crm script show %s)", seconds(time.Since(start)), stackScript)

	d.waitClone("consul", "consul Started on every node", 6*time.Minute)
	d.wait("consul leader elected", 5*time.Minute, func() (bool, string) {
		out, err := d.c.Exec(n0, "curl", "-sf", "-m", "5", "http://127.0.0.1:8500/v1/status/leader")
		return err == nil && strings.Trim(out, `"`) != "", "leader " + out
	})
	acl, err := os.ReadFile(filepath.Join(d.dir, filesDirName, stackfiles.ACLName))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.putKV(n0, "acl/"+service, acl); err != nil {
		t.Fatal(err)
	}
	d.p.Printf("  consul kv put acl/%s %s", service, strings.Join(strings.Fields(string(acl)), " "))
	d.waitClone("lb", "haproxy-dynamic Started on every node", 5*time.Minute)
	d.webAt = d.webNode(n0, nil, 5*time.Minute)
	d.waitClone("gw", "openresty-gateway Started on every node", 5*time.Minute)
	d.wait("every gateway serves web (alice's token)", 3*time.Minute, func() (bool, string) {
		for _, n := range d.c.Nodes {
			s := d.call(n, d.tokens["alice"])
			if !s.OK() || s.Who != d.webAt {
				return false, fmt.Sprintf("%s: status %d from %q %s", n, s.Status, s.Who, s.Err)
			}
		}
		return true, ""
	})
}

// scriptArgs is the crm script run that sets up the stack on the cluster,
// whose nodes share the network subnet.
func (d *demo) scriptArgs(subnet string) []string {
	// With an engine inside, each node also has docker0's private address:
	// Consul must be told the cluster's. Back-quotes in the template: the
	// value passes through crmsh's double quotes.
	bind := "{{ GetAllInterfaces | include `network` `" + subnet + "` | attr `address` }}"
	port := strconv.Itoa(stackfiles.WebPort)
	return []string{"crm", "script", "run", stackScript,
		"consul:servers=" + strings.Join(d.c.Nodes, " "), "consul:binary=" + consulInNode, "consul:bind_addr=" + bind,
		"service:id=" + service, "service:image=" + webImage, "service:pull=never", "service:network=host",
		"service:service_name=" + service, "service:service_port=" + port,
		"service:check_http=http://127.0.0.1:" + port + "/health",
		"proxy:routes=" + service + "=" + lbListen + "/http",
		// A request to the lost node is tried again every second, on
		// whatever instance passes by then: 20 tries hold it through a
		// failover (about 11 s with corosync's default token) instead of
		// failing it after 3 tries of 5 s.
		"proxy:timeout_connect=1s", "proxy:retries=20",
		"gateway:routes=" + gwPath + "=" + service + "=" + lbListen,
		"gateway:tls_cert_file=" + d.files.Cert, "gateway:tls_key_file=" + d.files.Key, "gateway:jwt_policy_file=" + d.files.Policy,
	}
}

// quote is args as a shell would take them.
func quote(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && !strings.ContainsAny(a, " \t\"'`$\\{}|*?") {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}
