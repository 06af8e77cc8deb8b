//go:build integration

package dockerservice

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// heartbeatDocker is resource-agents' shell agent for Docker containers.
const heartbeatDocker = "/usr/lib/ocf/resource.d/heartbeat/docker"

// BenchmarkMonitor measures one recurring monitor of the same running
// container by the installed docker-service and by heartbeat/docker (which
// runs the docker CLI several times), each as Pacemaker runs it: a new
// process per call. It reports wall time (ns/op) and the CPU time of the
// agent and every process it waited for (cpu-ns/op). Run it with make
// bench, or: go test -tags integration -run '^$' -bench Monitor -benchtime 20x.
func BenchmarkMonitor(b *testing.B) {
	for _, p := range []string{installed, heartbeatDocker} {
		if _, err := os.Stat(p); err != nil {
			b.Skipf("%s missing (make install; apt-get install resource-agents)", p)
		}
	}
	if _, err := exec.LookPath("docker"); err != nil {
		b.Skip("docker CLI missing (apt-get install docker.io): heartbeat/docker needs it")
	}
	d := benchEngine(b)
	env, port := serviceEnv(b)
	name := "hafw-bench"
	common := []string{
		"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=" + name, "HA_RSCTMP=" + b.TempDir(),
		"OCF_RESKEY_CRM_meta_timeout=20000", "OCF_RESKEY_image=" + imagePlain, "OCF_RESKEY_name=" + name,
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	}
	ours := append(append([]string{}, common...), "OCF_RESKEY_docker_host="+d.Host, "OCF_RESKEY_network=host",
		"OCF_RESKEY_pull=never", "OCF_RESKEY_env_file="+env, "OCF_RESKEY_check_tcp=127.0.0.1:"+strconv.Itoa(port))
	// heartbeat/docker has no socket parameter: its docker CLI reads
	// DOCKER_HOST.
	theirs := append(append([]string{}, common...), "DOCKER_HOST="+d.Host)

	run := func(b *testing.B, agent string, env []string, action string, extra ...string) time.Duration {
		cmd := exec.Command(agent, action)
		cmd.Env = append(append([]string{}, env...), extra...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%s %s: %v\n%s", agent, action, err, out)
		}
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	run(b, installed, ours, "start")
	b.Cleanup(func() { run(b, installed, ours, "stop") })

	for _, c := range []struct {
		name  string
		agent string
		env   []string
	}{{"docker-service", installed, ours}, {"heartbeat-docker", heartbeatDocker, theirs}} {
		b.Run(c.name, func(b *testing.B) {
			var cpu time.Duration
			b.ResetTimer()
			for range b.N {
				cpu += run(b, c.agent, c.env, "monitor", "OCF_RESKEY_CRM_meta_interval=10000")
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchEngine is a dockerd with the test images, for a benchmark.
func benchEngine(b *testing.B) *testDaemon {
	b.Helper()
	d := launchEngine(b, engineDocker, false)
	b.Cleanup(func() {
		d.shutdown()
		d.removeBase()
	})
	d.buildImages(b)
	return d
}
