//go:build integration

package dockerservice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// installed is where make install puts the agent for Pacemaker.
const installed = "/usr/lib/ocf/resource.d/ha-framework/docker-service"

// TestOCFTester runs resource-agents' ocf-tester on the installed agent.
func TestOCFTester(t *testing.T) {
	if _, err := os.Stat(installed); err != nil {
		t.Skipf("agent not installed (make install): %v", err)
	}
	d := sharedEngine(t, engineDocker)
	env, port := serviceEnv(t)
	params := map[string]string{"image": imagePlain, "docker_host": d.Host, "network": "host", "env_file": env,
		"pull": "never", "check_tcp": "127.0.0.1:" + strconv.Itoa(port)}
	ocftest.OCFTester(t, installed, ocftest.Config{Name: "docker-service", Params: params, Env: map[string]string{"HA_RSCTMP": t.TempDir()}})
}

// TestOnPacemaker runs the installed agent under the local single-node
// cluster: Pacemaker starts the container, recovers it after kill -9 of
// its process, replaces it after a configuration change, and removes it
// with the resource.
func TestOnPacemaker(t *testing.T) {
	if _, err := exec.LookPath("pcs"); err != nil {
		t.Skip("pcs not installed: run testcluster/scripts/install-deps.sh")
	}
	if out, err := exec.Command("crm_mon", "-1").CombinedOutput(); err != nil {
		t.Skipf("no running Pacemaker (make cluster-up): %v\n%s", err, out)
	}
	if _, err := os.Stat(installed); err != nil {
		t.Skipf("agent not installed (make install): %v", err)
	}
	d := sharedEngine(t, engineDocker)
	cli := d.Client(t)
	b := make([]byte, 3)
	rand.Read(b)
	id := "hafw-dkr-" + hex.EncodeToString(b)
	env, port := serviceEnv(t)
	pcs(t, "resource", "create", id, "ocf:ha-framework:docker-service", "image="+imagePlain, "docker_host="+d.Host,
		"network=host", "env_file="+env, "pull=never", "check_tcp=127.0.0.1:"+strconv.Itoa(port),
		"op", "monitor", "interval=2s", "timeout=20s", "--wait=90")
	deleted := false
	t.Cleanup(func() {
		if deleted {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "pcs", "resource", "delete", id).CombinedOutput(); err != nil {
			t.Logf("pcs resource delete %s: %v\n%s", id, err, out)
		}
		exec.CommandContext(ctx, "crm_resource", "--cleanup", "--resource", id).Run()
	})
	running := func() (string, int, bool) {
		res, err := cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
		if err != nil || res.Container.State == nil || !res.Container.State.Running {
			return "", 0, false
		}
		return res.Container.ID, res.Container.State.Pid, true
	}
	first, pid, ok := running()
	if !ok {
		t.Fatalf("container %s not running after pcs resource create", id)
	}

	t.Run("kill -9 of the container's process is recovered", func(t *testing.T) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 60*time.Second, "a new container", func() bool {
			cid, _, ok := running()
			return ok && cid != first
		})
		if out := pcs(t, "resource", "failcount", "show", id); !strings.Contains(out, "1") {
			t.Errorf("fail count after kill -9:\n%s", out)
		}
	})

	t.Run("a configuration change replaces the container", func(t *testing.T) {
		before, _, _ := running()
		pcs(t, "resource", "update", id, "labels=tier=web", "--wait=90")
		waitUntil(t, 60*time.Second, "a relabelled container", func() bool {
			cid, _, ok := running()
			if !ok || cid == before {
				return false
			}
			res, err := cli.ContainerInspect(context.Background(), cid, client.ContainerInspectOptions{})
			return err == nil && res.Container.Config.Labels["tier"] == "web"
		})
	})

	t.Run("deleting the resource removes the container", func(t *testing.T) {
		pcs(t, "resource", "delete", id)
		deleted = true
		waitUntil(t, 30*time.Second, "the container removed", func() bool {
			_, err := cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
			return isNotFound(err)
		})
	})
}

func pcs(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pcs", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pcs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			out, _ := exec.Command("crm_mon", "-1", "--include=failures").CombinedOutput()
			t.Fatalf("gave up after %v waiting for %s; crm_mon:\n%s", limit, what, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
