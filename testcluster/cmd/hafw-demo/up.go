package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/dockercluster"
	"github.com/ha-framework/ha-framework/testcluster/harness"
	"github.com/ha-framework/ha-framework/testcluster/stackkit"
)

// Where things are inside the nodes.
const (
	consulInNode = "/hafw/consul"
	webInNode    = "/hafw/web/hafw-web"
	gwDirInNode  = "/etc/hafw-demo" // the gateway's certificate, key and JWT policy
	webPort      = "8080"           // the web service, on every address of its node
	lbListen     = "127.0.0.1:8081" // haproxy-dynamic's listener for web, on every node
	gwPort       = "8443"           // the gateway (HTTPS), on every node
	webImage     = "hafw-demo-web:1"
)

// demo is one run of up.
type demo struct {
	p      *progress
	c      *harness.Cluster
	dir    string
	ca     *stackkit.CA
	issuer *stackkit.Issuer
	client *http.Client
	docker bool              // the web service runs as a docker-service container
	tokens map[string]string // by subject
	start  time.Time
	webAt  string          // the node running web
	lost   string          // the node powered off
	outage stackkit.Outage // what the client saw of it
}

func up(p *progress, o options) int {
	d := &demo{p: p, dir: o.dir, start: time.Now(), tokens: map[string]string{}}
	t := fatal{p, o.dir}
	p.Printf("== ha-framework demo: 3 Pacemaker nodes in Docker and the whole stack")
	if err := down(p, o.dir); err != nil {
		t.Fatalf("removing the previous demo: %v", err)
	}
	consul, err := consulBinary(o.consul)
	if err != nil {
		t.Fatalf("consul: %v", err)
	}
	if err := d.prepareFiles(o.web); err != nil {
		t.Fatalf("demo files in %s: %v", d.dir, err)
	}
	if os.Getenv("HAFW_NODE_DEB") != "" {
		p.Printf("nodes install %s", os.Getenv("HAFW_NODE_DEB"))
	}

	p.Printf("\n== the cluster: 3 nodes, fencing by fence_docker (the node image is built once, then cached)")
	step := time.Now()
	d.c = harness.Up(t, dockercluster.New(""), &harness.Options{
		Name: clusterName, Keep: true, Fencing: true, Docker: true, Waiting: p.Waiting,
		// Generous: on a busy machine Pacemaker takes minutes to elect a DC.
		ReadyTimeout: 10 * time.Minute,
		Files:        map[string]string{consul: consulInNode, filepath.Join(d.dir, "web", "hafw-web"): webInNode, filepath.Join(d.dir, "gw"): gwDirInNode},
	})
	p.Printf("  cluster %s ready in %s: %s", d.c.Name, seconds(time.Since(step)), d.nodeList())
	d.c.EnableFencing()

	if err := d.gatewayFiles(); err != nil {
		t.Fatalf("gateway certificate and policy: %v", err)
	}
	d.client = &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.ca.Pool()}, MaxIdleConnsPerHost: 4}}
	d.docker = d.nodesRunDocker()

	p.Printf("\n== the stack")
	d.createStack()
	p.Printf("  stack up %s after the start", seconds(time.Since(d.start)))

	d.showRequests()
	d.showACLChange()
	d.showNodeLoss()
	d.summary()
	return 0
}

// prepareFiles writes the demo's folder: the marker, the web binary, the
// CA (its key stays in memory), the JWT issuer's public key and tokens.
func (d *demo) prepareFiles(web string) error {
	for _, sub := range []string{"web", "gw"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(d.dir, markerFile), []byte("make demo-down removes this folder\n"), 0o644); err != nil {
		return err
	}
	bin, err := os.ReadFile(web)
	if err != nil {
		return fmt.Errorf("the web service binary (go build -o %s ./testcluster/cmd/hafw-web): %w", web, err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "web", "hafw-web"), bin, 0o755); err != nil {
		return err
	}
	if d.ca, err = stackkit.NewCA("ha-framework demo CA", 7*24*time.Hour); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "ca.pem"), d.ca.PEM, 0o644); err != nil {
		return err
	}
	if d.issuer, err = stackkit.NewIssuer("https://idp.demo.invalid", "demo-api", "demo-1"); err != nil {
		return err
	}
	for _, sub := range []string{"alice", "bob"} {
		if d.tokens[sub], err = d.issuer.Token(sub, 24*time.Hour); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d.dir, "token-"+sub), []byte(d.tokens[sub]+"\n"), 0o600); err != nil {
			return err
		}
	}
	pub, err := d.issuer.PublicKeyPEM()
	if err != nil {
		return err
	}
	pol, err := d.issuer.Policy(gwDirInNode + "/idp.pem")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "gw", "idp.pem"), pub, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.dir, "gw", "jwt.json"), pol, 0o644)
}

// gatewayFiles writes the gateway's certificate, for every node's address
// and name, once the nodes have them.
func (d *demo) gatewayFiles() error {
	hosts := []string{"127.0.0.1", "localhost"}
	for _, n := range d.c.Nodes {
		hosts = append(hosts, d.c.IPs[n], n)
	}
	cert, key, err := d.ca.Server("ha-framework demo gateway", hosts)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "gw", "gw.pem"), cert, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.dir, "gw", "gw.key"), key, 0o600)
}

// nodesRunDocker reports whether every node answers docker info.
func (d *demo) nodesRunDocker() bool {
	for _, n := range d.c.Nodes {
		if out, err := d.c.Exec(n, "docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
			d.p.Printf("  LEFT OUT: the web service as a docker-service container: no Docker Engine inside the nodes yet (%s: %s);\n"+
				"  it runs as a plain process (ocf:heartbeat:anything) with directory-registration instead", n, harness.TailLines(out, 1))
			return false
		}
	}
	return true
}

func (d *demo) fatal() fatal { return fatal{d.p, d.dir} }

// wait is WaitFor with a line saying how long it took.
func (d *demo) wait(what string, within time.Duration, cond func() (bool, string)) {
	start := time.Now()
	d.c.WaitFor(within, what, cond)
	d.p.Printf("  %s: %s", what, seconds(time.Since(start)))
}

// startedOn is where id's instances are Started, as node sees it, sorted;
// why says what it sees.
func (d *demo) startedOn(node, id string) (on []string, why string) {
	s, err := d.c.Status(node)
	if err != nil {
		return nil, err.Error()
	}
	nodes, roles := s.Resources[id], s.Roles[id]
	for i, n := range nodes {
		if i < len(roles) && roles[i] == "Started" {
			on = append(on, n)
		}
	}
	slices.Sort(on)
	why = fmt.Sprintf("%s Started on [%s]", id, strings.Join(on, ","))
	if f := s.FailuresOf(id); f != "" {
		why += ", failed: " + f
	}
	return on, why
}

// waitClone waits until id runs on every node.
func (d *demo) waitClone(id, what string, within time.Duration) {
	all := slices.Sorted(slices.Values(d.c.Nodes))
	d.wait(what, within, func() (bool, string) {
		on, why := d.startedOn(d.c.Nodes[0], id)
		return slices.Equal(on, all), why
	})
}

// webNode waits until the web service runs, registered and passing in
// Consul, on a node not in avoid, as view sees it, and returns that node.
func (d *demo) webNode(view string, avoid []string, within time.Duration) string {
	var at string
	d.wait("web Started and passing in Consul", within, func() (bool, string) {
		on, why := d.startedOn(view, "web")
		if len(on) != 1 || slices.Contains(avoid, on[0]) {
			return false, why
		}
		out, err := d.c.Exec(view, "curl", "-sf", "-m", "5", "http://127.0.0.1:8500/v1/health/service/web?passing")
		if err != nil || !strings.Contains(out, `"Node":"`+on[0]+`"`) {
			return false, why + "; not passing in Consul yet"
		}
		at = on[0]
		return true, ""
	})
	return at
}

func (d *demo) nodeList() string {
	var s []string
	for _, n := range d.c.Nodes {
		s = append(s, n+" "+d.c.IPs[n])
	}
	return strings.Join(s, ", ")
}

func (d *demo) gatewayURL(node string) string { return "https://" + d.c.IPs[node] + ":" + gwPort + "/" }

// putKV writes value at key through node's Consul agent.
func (d *demo) putKV(node, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := d.c.Command(ctx, node, "curl", "-sf", "-m", "10", "-X", "PUT", "--data-binary", "@-", "http://127.0.0.1:8500/v1/kv/"+key)
	cmd.Stdin = strings.NewReader(string(value))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "true" {
		return fmt.Errorf("PUT %s on %s: %v %s", key, node, err, out)
	}
	return nil
}
