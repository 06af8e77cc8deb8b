package daemon_test

import (
	"context"
	"fmt"
	"strconv"
	"syscall"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/daemon"
)

// A daemon agent declares its parameters and how to run the daemon; the
// Daemon supplies start, stop, monitor, reload-agent and validation.
// examples/memcached in this repository is the complete agent.
func Example() {
	type Config struct {
		Binary string
		Port   int
	}
	d := &daemon.Daemon[Config]{
		Name: "memcached",
		Command: func(ctx context.Context, r *ocf.Request[Config]) (daemon.Command, error) {
			return daemon.Command{Path: r.Config.Binary, Param: "binary",
				Args: []string{"-p", strconv.Itoa(r.Config.Port), "-l", "127.0.0.1"}}, nil
		},
		Ready:  daemon.TCP(func(c *Config) string { return "127.0.0.1:" + strconv.Itoa(c.Port) }),
		Reload: daemon.Signal[Config](syscall.SIGHUP),
	}
	agent := d.Agent(&ocf.Agent[Config]{
		Name: "memcached", Version: "1.0.0", ShortDesc: "memcached",
		Params: func(c *Config) []ocf.Param {
			return []ocf.Param{
				ocf.String(&c.Binary, "binary", "memcached binary", ocf.Default("memcached")),
				ocf.Port(&c.Port, "port", "TCP port", ocf.Default("11211")),
			}
		},
	})
	// main would be: func main() { os.Exit(agent.Main()) }
	fmt.Println(agent.Advertised())
	fmt.Println(agent.CheckDeclaration())
	// Output:
	// [start stop monitor reload-agent meta-data validate-all]
	// <nil>
}
