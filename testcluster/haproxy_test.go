//go:build integration

package testcluster

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// TestHAProxyDynamicOnPacemaker runs haproxy-dynamic under Pacemaker in
// front of a real backend registered in a real Consul: traffic flows, and
// Pacemaker recovers the proxy after a SIGKILL of HAProxy's master and
// after one of the watcher.
func TestHAProxyDynamicOnPacemaker(t *testing.T) {
	requireCluster(t)
	consul := consultest.StartServer(t, &consultest.Options{Dev: true})
	addr := consul.HTTPAddr(0)
	ports := consultest.FreePorts(t, 2)
	listen, backendPort := ports[0], ports[1]

	backend := &http.Server{Addr: "127.0.0.1:" + strconv.Itoa(backendPort), Handler: http.HandlerFunc(
		func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "backend-1") })}
	go backend.ListenAndServe()
	t.Cleanup(func() { backend.Close() })
	service := uniqueID(t, "hafw-svc")
	body := fmt.Sprintf(`{"ID":"%s-1","Name":"%s","Address":"127.0.0.1","Port":%d}`, service, service, backendPort)
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/agent/service/register", strings.NewReader(body))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("registering the backend: %v %v", err, resp)
	}

	id := uniqueID(t, "hafw-lb")
	pcs(t, "resource", "create", id, "ocf:ha-framework:haproxy-dynamic", "consul_address="+addr,
		fmt.Sprintf("routes=%s=127.0.0.1:%d/http", service, listen), "op", "monitor", "interval=2s", "timeout=20s", "--wait=60")
	t.Cleanup(func() { deleteResource(t, id) })
	waitFor(t, 60*time.Second, "started", func() (bool, string) { r := role(t, id); return r == "Started", r })

	get := func() (string, error) {
		client := http.Client{Timeout: 2 * time.Second}
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", listen))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	waitFor(t, 20*time.Second, "traffic through the proxy", func() (bool, string) {
		got, err := get()
		return got == "backend-1", fmt.Sprint(got, err)
	})

	dir := filepath.Join("/run/resource-agents", "haproxy-dynamic-"+id+".d")
	for _, victim := range []string{"haproxy.pid", "watcher.pid"} {
		t.Run("kill -9 "+strings.TrimSuffix(victim, ".pid"), func(t *testing.T) {
			before := readPID(t, filepath.Join(dir, victim))
			fails := failCount(t, id)
			killed := time.Now()
			if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 60*time.Second, "Pacemaker recovers the proxy", func() (bool, string) {
				data, _ := os.ReadFile(filepath.Join(dir, victim))
				pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
				got, err := get()
				return pid != 0 && pid != before && failCount(t, id) > fails && got == "backend-1",
					fmt.Sprintf("pid %d (was %d), failcount %d, request: %q %v", pid, before, failCount(t, id), got, err)
			})
			t.Logf("served again %v after the kill", time.Since(killed).Round(time.Millisecond))
			// The proxy may serve before the recovery's start has returned:
			// the next kill must not land inside that start, whose failure
			// Pacemaker would rightly count as fatal.
			settle(t)
		})
	}
}

// TestHAProxyDynamicOCFTester runs the real ocf-tester on the installed
// agent against a real Consul and HAProxy.
func TestHAProxyDynamicOCFTester(t *testing.T) {
	consul := consultest.StartServer(t, &consultest.Options{Dev: true})
	port := consultest.FreePorts(t, 1)[0]
	// A short state directory: HAProxy's runtime socket path is limited
	// to 97 bytes, and t.TempDir's names are long.
	state, err := os.MkdirTemp("/tmp", "hafw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	ocfTester(t, "haproxy-dynamic", map[string]string{
		"consul_address": consul.HTTPAddr(0), "routes": fmt.Sprintf("ocftester=127.0.0.1:%d/tcp", port),
	}, map[string]string{"HA_RSCTMP": state})
}
