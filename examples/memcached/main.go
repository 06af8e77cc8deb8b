// Command memcached is a complete OCF resource agent for memcached, built
// on the ha-framework SDK alone: the template to copy for a daemon agent.
// Everything that is the same for every daemon (spawning it detached,
// waiting until it serves, failing fast when it exits, stopping it with
// TERM then KILL before the deadline, finding it again by the identity
// recorded at start, probes, exit codes and reasons) comes from
// ocf/daemon; the agent says what is particular to memcached.
//
// Install the binary as /usr/lib/ocf/resource.d/PROVIDER/memcached, then:
//
//	pcs resource create cache ocf:PROVIDER:memcached port=11211 memory=256
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/daemon"
)

// Config holds the instance parameters.
type Config struct {
	Binary   string
	Listen   string
	Port     int
	Memory   int
	MaxConns int
	User     string
	Options  string
}

func (c *Config) addr() string { return net.JoinHostPort(c.Listen, strconv.Itoa(c.Port)) }

// New declares the agent.
func New() *ocf.Agent[Config] {
	d := &daemon.Daemon[Config]{
		Name:    "memcached",
		Command: command,
		Ready:   daemon.TCP(func(c *Config) string { return c.addr() }),
		Deep:    stats,
	}
	return d.Agent(&ocf.Agent[Config]{
		Name:      "memcached",
		Version:   "1.0.0",
		ShortDesc: "memcached, a memory object cache",
		LongDesc: "Runs memcached in the foreground under the cluster's control. " +
			"Monitor depth 0 checks the process and a TCP connection; depth 10 asks memcached for its statistics.",
		Params:   params,
		Validate: validate,
		Operations: []ocf.Operation{
			{Name: ocf.ActionMonitor, Timeout: 20 * time.Second, Interval: 10 * time.Second},
			{Name: ocf.ActionMonitor, Timeout: 20 * time.Second, Interval: 60 * time.Second, Depth: 10},
		},
	})
}

func params(c *Config) []ocf.Param {
	return []ocf.Param{
		ocf.String(&c.Binary, "binary", "memcached binary", ocf.Default("memcached"),
			ocf.Long("Name (looked up in PATH) or absolute path of memcached.")),
		ocf.String(&c.Listen, "listen", "Address to listen on", ocf.Default("127.0.0.1"), ocf.Check(ipAddress)),
		ocf.Port(&c.Port, "port", "TCP port", ocf.Default("11211"), ocf.UniqueGroup("port")),
		ocf.Int(&c.Memory, "memory", "Cache size in megabytes", ocf.Default("64"), ocf.Range(1, 1<<20)),
		ocf.Int(&c.MaxConns, "max_connections", "Most simultaneous connections", ocf.Default("1024"), ocf.Range(1, 1<<20)),
		ocf.String(&c.User, "user", "User memcached runs as", ocf.Default("memcache"),
			ocf.Long("memcached refuses to run as root; this user must exist on every node.")),
		ocf.String(&c.Options, "options", "Extra command-line options",
			ocf.Long("More memcached options, separated by spaces, such as \"-t 8 -R 40\".")),
	}
}

func ipAddress(v string) error {
	if net.ParseIP(v) == nil {
		return fmt.Errorf("not an IP address")
	}
	return nil
}

// validate rejects what memcached itself would refuse later, less clearly.
func validate(ctx context.Context, r *ocf.Request[Config]) error {
	for _, opt := range strings.Fields(r.Config.Options) {
		switch opt {
		case "-d", "--daemon", "-P", "--pidfile", "-p", "--port", "-l", "--listen":
			return ocf.Errorf(ocf.Misconfigured, "options: remove %s; the agent sets it", opt)
		}
	}
	return nil
}

// command runs memcached in the foreground: the SDK keeps its pid.
func command(ctx context.Context, r *ocf.Request[Config]) (daemon.Command, error) {
	c := r.Config
	args := []string{
		"-p", strconv.Itoa(c.Port), "-l", c.Listen, "-U", "0",
		"-m", strconv.Itoa(c.Memory), "-c", strconv.Itoa(c.MaxConns), "-u", c.User,
	}
	args = append(args, strings.Fields(c.Options)...)
	return daemon.Command{Path: c.Binary, Param: "binary", Args: args}, nil
}

// stats asks memcached for its statistics: a memcached that accepts
// connections but no longer answers commands fails it.
func stats(ctx context.Context, r *ocf.Request[Config], p daemon.Process) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.Config.addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("stats\r\n")); err != nil {
		return err
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		if line := sc.Text(); line == "END" {
			return nil
		} else if strings.HasPrefix(line, "STAT pid ") && line != "STAT pid "+strconv.Itoa(p.PID) {
			return ocf.Errorf(ocf.GenericFailure, "another memcached (%s) answers on %s", line[len("STAT pid "):], r.Config.addr())
		}
	}
	return fmt.Errorf("stats on %s: no END: %v", r.Config.addr(), sc.Err())
}

func main() { os.Exit(New().Main()) }
