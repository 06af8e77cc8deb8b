//go:build integration

package dockerservice

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/moby/moby/client"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// TestInterrupted kills the agent's start and stop as pacemaker-execd
// kills them at their timeout (SIGKILL to the agent's process group), on
// dockerd and on Podman, and then runs what Pacemaker runs next
// (ocftest.Recover): start as soon as the container exists, start once
// the container runs but before it is ready, and stop while it waits for
// the container to end. The killed actions run the test binary as the
// agent (see TestMain); the recovery runs in-process on the same state.
func TestInterrupted(t *testing.T) {
	forEachEngine(t, func(t *testing.T, kind string) {
		d := sharedEngine(t, kind)
		s := newService(t, d, imagePlain, nil)
		t.Cleanup(func() { s.Run(ocf.ActionStop, nil) })
		killed := ocftest.NewSelfRunner(t, ocftest.Config{Name: "docker-service", Env: s.Env()})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cli := d.Client(t)
		state := func() (exists, running bool, pid int) {
			res, err := cli.ContainerInspect(ctx, s.name, client.ContainerInspectOptions{})
			if err != nil {
				return false, false, 0
			}
			st := res.Container.State
			return true, st != nil && st.Running, func() int {
				if st == nil {
					return 0
				}
				return st.Pid
			}()
		}
		interrupt := func(t *testing.T, action string, extra map[string]string, at func() bool) {
			t.Helper()
			ocftest.Interrupted(t, ctx, killed, ocftest.Interruption{Action: action, Extra: extra, At: at})
		}
		removed := func(t *testing.T) func() {
			return func() {
				if exists, _, _ := state(); exists {
					t.Errorf("container %s left after stop", s.name)
				}
				if _, err := os.Stat(s.record); err == nil {
					t.Errorf("the container's record %s left after stop", s.record)
				}
			}
		}

		t.Run("start, container created", func(t *testing.T) {
			interrupt(t, ocf.ActionStart, nil, func() bool { exists, _, _ := state(); return exists })
			// Created, perhaps started: not running, or running (and
			// perhaps not ready yet).
			ocftest.Recover(t, s.Runner, []ocf.Code{ocf.NotRunning, ocf.Success, ocf.GenericFailure}, removed(t))
		})

		t.Run("start, container running, not ready", func(t *testing.T) {
			s.must(t, ocf.ActionStop, nil, ocf.Success)
			// A readiness check that cannot pass holds the start.
			never := map[string]string{"OCF_RESKEY_check_tcp": "127.0.0.1:" + strconv.Itoa(freePort(t))}
			interrupt(t, ocf.ActionStart, never, func() bool { _, running, _ := state(); return running })
			// It serves; its configuration is the killed start's.
			ocftest.Recover(t, s.Runner, []ocf.Code{ocf.Success, ocf.GenericFailure}, removed(t))
		})

		t.Run("stop, waiting for the container to end", func(t *testing.T) {
			_, _, pid := state()
			if pid <= 0 {
				t.Fatal("no container process")
			}
			// Stopped, the container's process keeps the engine's stop
			// signal pending: the stop waits for it, and is killed then.
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			interrupt(t, ocf.ActionStop, nil, ocftest.SignalPending(pid, syscall.SIGTERM))
			// The service ends on its own, after the agent.
			syscall.Kill(pid, syscall.SIGCONT)
			ocftest.Recover(t, s.Runner, []ocf.Code{ocf.NotRunning, ocf.Success, ocf.GenericFailure}, removed(t))
		})
	})
}

// TestInterruptedRegistration kills, with register=true, the start once
// the container runs but before its registration, and the stop in the
// middle of the registration's drain (the instance in maintenance), then
// runs what Pacemaker runs next (ocftest.Recover): the stop must leave no
// registration, and the start must register again. (A stop killed after
// the drain leaves the state the first case does: a container running
// unregistered.)
func TestInterruptedRegistration(t *testing.T) {
	consul := consultest.StartServer(t, &consultest.Options{Dev: true})
	cfg := api.DefaultConfig()
	cfg.Address = consul.HTTPAddr(0)
	capi, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := sharedEngine(t, engineDocker)
	s := newService(t, d, imageRegistrator, map[string]string{"register": "true", "consul_address": consul.HTTPAddr(0)})
	env := s.Env()
	env["OCF_RESKEY_service_port"] = strconv.Itoa(s.port)
	env["OCF_RESKEY_CRM_meta_on_node"] = "node1"
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "docker-service", Env: env})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	killed := ocftest.NewSelfRunner(t, ocftest.Config{Name: "docker-service", Env: env})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := d.Client(t)
	running := func() bool {
		res, err := cli.ContainerInspect(ctx, s.name, client.ContainerInspectOptions{})
		return err == nil && res.Container.State != nil && res.Container.State.Running
	}
	registered := func() bool {
		services, err := capi.Agent().Services()
		return err == nil && len(services) > 0
	}
	interrupt := func(t *testing.T, action string, at func() bool) {
		t.Helper()
		ocftest.Interrupted(t, ctx, killed, ocftest.Interruption{Action: action, At: at})
	}
	clean := func(t *testing.T) func() {
		return func() {
			if services, _ := capi.Agent().Services(); len(services) != 0 {
				t.Errorf("services left after stop: %v", services)
			}
			if running() {
				t.Errorf("container %s still runs after stop", s.name)
			}
		}
	}

	t.Run("start, container running, not registered", func(t *testing.T) {
		interrupt(t, ocf.ActionStart, running)
		ocftest.Recover(t, r, []ocf.Code{ocf.Success, ocf.GenericFailure}, clean(t))
		if !registered() {
			t.Errorf("not registered after the start")
		}
	})

	t.Run("stop, draining, in maintenance", func(t *testing.T) {
		interrupt(t, ocf.ActionStop, func() bool {
			checks, err := capi.Agent().Checks()
			if err != nil {
				return false
			}
			for id := range checks {
				if strings.HasPrefix(id, api.ServiceMaintPrefix) {
					return true
				}
			}
			return false
		})
		// Registered, in the maintenance of the unfinished stop: failed,
		// so that Pacemaker stops and starts it.
		ocftest.Recover(t, r, []ocf.Code{ocf.GenericFailure}, clean(t))
		if !registered() {
			t.Errorf("not registered after the start")
		}
	})
}
