// Command hafw-demo brings up the whole ha-framework stack on a 3-node
// Pacemaker cluster of Docker containers on this machine, shows what it
// does with numbers, and leaves it running for you (make demo); `down`
// removes it (make demo-down).
//
//	hafw-demo up   [-dir /var/tmp/hafw-demo] [-consul PATH]
//	hafw-demo down [-dir /var/tmp/hafw-demo]
//
// up: the nodes (testcluster/dockercluster, fencing by fence_docker, the
// project's .deb from $HAFW_NODE_DEB installed on each, a Docker Engine in
// each), then one `crm script run ha-framework-stack`: Consul as a clone of
// 3 servers, the web service (a static Go server in an image FROM scratch)
// as docker-service registering itself in Consul, the haproxy-dynamic and
// openresty-gateway clones with a test CA and a JWT key
// (testcluster/stackfiles), and the service's ACL in Consul KV. Then: a request
// with a valid token served, one the ACL denies (403), a forged token
// refused (401), the ACL changed in Consul and enforced without a reload of
// nginx, and the node running the service killed while a client calls
// through the gateway of another node. It ends with the URLs, a token file
// and what to try next. The cluster outlives the program; up removes a
// previous demo cluster first.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/dockercluster"
	"github.com/ha-framework/ha-framework/testcluster/harness"
)

// clusterName is the demo cluster's fixed name: its nodes are
// hafw-demo-n1..3, and down finds it by it.
const clusterName = "hafw-demo"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "up" && args[0] != "down") {
		fmt.Fprintln(stderr, "usage: hafw-demo up|down [flags]; hafw-demo up -h lists the flags")
		return 2
	}
	fs := flag.NewFlagSet("hafw-demo "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.dir, "dir", "/var/tmp/hafw-demo", "host folder of the demo's files (CA, keys, token); mounted into the nodes")
	fs.StringVar(&o.consul, "consul", "", "consul binary (default: $HAFW_CONSUL, else testcluster/scripts/build-consul.sh)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hafw-demo %s: unexpected arguments %q\n", args[0], fs.Args())
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "hafw-demo: must run as root (Docker, the nodes' files)")
		return 1
	}
	p := &progress{out: stdout, tty: isTerminal(stdout), every: 5 * time.Second}
	if args[0] == "down" {
		if err := down(p, o.dir); err != nil {
			fmt.Fprintln(stderr, "hafw-demo down:", err)
			return 1
		}
		return 0
	}
	return up(p, o)
}

type options struct {
	dir, consul string
}

// down removes the demo cluster and its folder.
func down(p *progress, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p.Printf("removing the demo cluster %s and %s", clusterName, dir)
	err := dockercluster.Remove(ctx, clusterName)
	if rerr := removeDemoDir(dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}

// removeDemoDir removes dir if it is the demo's (it holds the marker file
// up writes), never anything else a mistyped -dir could name.
func removeDemoDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
		if _, derr := os.Stat(dir); errors.Is(derr, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("%s is not the demo's folder (no %s): left alone", dir, markerFile)
	}
	return os.RemoveAll(dir)
}

const markerFile = "hafw-demo"

// fatal is the harness.TB of a program: Fatal prints and exits, leaving the
// cluster as it is for a look (make demo-down removes it).
type fatal struct {
	p   *progress
	dir string // the demo's folder
}

func (f fatal) Helper()        {}
func (f fatal) Failed() bool   { return false }
func (f fatal) Cleanup(func()) {}

// TempDir is a folder under the demo's, removed with it.
func (f fatal) TempDir() string {
	dir, err := os.MkdirTemp(f.dir, "tmp-")
	if err != nil {
		f.Fatal(err)
	}
	return dir
}
func (f fatal) Logf(format string, args ...any)   { f.p.Printf("  "+format, args...) }
func (f fatal) Fatal(args ...any)                 { f.die(fmt.Sprint(args...)) }
func (f fatal) Fatalf(format string, args ...any) { f.die(fmt.Sprintf(format, args...)) }

func (f fatal) die(msg string) {
	f.p.Printf("\nDEMO FAILED: %s", msg)
	f.p.Printf("The cluster is left as it is: docker exec -it %s-n1 crm_mon -1rf; make demo-down removes it.", clusterName)
	os.Exit(1)
}

// consulBinary is the consul binary to mount into the nodes.
func consulBinary(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if p := os.Getenv("HAFW_CONSUL"); p != "" {
		return p, nil
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "testcluster/scripts/build-consul.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build-consul.sh: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return "", errors.New("build-consul.sh printed no path")
	}
	return f[len(f)-1], nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
