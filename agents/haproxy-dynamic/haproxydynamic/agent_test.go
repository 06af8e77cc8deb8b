package haproxydynamic

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/watcher"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

func TestDeclaration(t *testing.T) {
	if err := New().CheckDeclaration(); err != nil {
		t.Fatal(err)
	}
}

// TestBadInput needs no HAProxy: every case fails before one would start.
func TestBadInput(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badFile, []byte(`{"routes":[{"service":"a","listen":"80","balance":"nope"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, "token")
	if err := os.WriteFile(loose, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "routes.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	writable := filepath.Join(dir, "writable.json")
	if err := os.WriteFile(writable, []byte(`{"routes":[{"service":"a","listen":"80"}]}`), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(writable, 0o666); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(dir, "planted")
	if err := os.Mkdir(planted, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(planted, 0o777); err != nil {
		t.Fatal(err)
	}
	probe := map[string]string{"OCF_RESKEY_CRM_meta_interval": "0"}
	tests := []struct {
		name   string
		params map[string]string
		action string
		extra  map[string]string
		want   ocf.Code
		reason string
	}{
		{"no routes", map[string]string{}, ocf.ActionValidateAll, nil, ocf.Misconfigured, "no routes; set parameter routes"},
		{"routes_file a FIFO", map[string]string{"routes_file": fifo, "socket": "/tmp/hafw-t.sock"}, ocf.ActionValidateAll, nil, ocf.InvalidArgs, "routes_file: point it at a regular file"},
		{"routes_file writable by others", map[string]string{"routes_file": writable, "socket": "/tmp/hafw-t.sock"}, ocf.ActionValidateAll, nil, ocf.InvalidArgs, "routes_file"},
		{"state_dir writable by others", map[string]string{"routes": "a=" + freePort(t), "state_dir": planted, "binary": "/bin/true"}, ocf.ActionStart, nil, ocf.InvalidArgs, "state_dir: fix or remove " + planted},
		{"malformed routes", map[string]string{"routes": "web:8081"}, ocf.ActionStart, nil, ocf.Misconfigured, "parameter routes=\"web:8081\" is invalid"},
		{"unknown balance", map[string]string{"routes": "web=8081/http/fastest"}, ocf.ActionStart, nil, ocf.Misconfigured, `unknown option "fastest"`},
		{"two routes on one port", map[string]string{"routes": "a=8081,b=127.0.0.1:8081"}, ocf.ActionValidateAll, nil, ocf.Misconfigured, "both listen on 127.0.0.1:8081"},
		{"routes and routes_file", map[string]string{"routes": "a=1", "routes_file": badFile}, ocf.ActionValidateAll, nil, ocf.Misconfigured, "exclude each other"},
		{"routes_file missing", map[string]string{"routes_file": "/nonexistent/routes.json"}, ocf.ActionStart, nil, ocf.InvalidArgs, "routes_file file /nonexistent/routes.json does not exist on this node"},
		{"routes_file invalid", map[string]string{"routes_file": badFile}, ocf.ActionStart, nil, ocf.InvalidArgs, `unknown balance algorithm "nope"`},
		{"routes_file invalid, probe", map[string]string{"routes_file": badFile}, ocf.ActionMonitor, probe, ocf.NotRunning, ""},
		{"routes_file relative", map[string]string{"routes_file": "routes.json"}, ocf.ActionValidateAll, nil, ocf.Misconfigured, "must be an absolute path"},
		{"haproxy missing", map[string]string{"routes": "a=1", "binary": "/nonexistent/haproxy"}, ocf.ActionStart, nil, ocf.NotInstalled, "set parameter binary"},
		{"haproxy missing, probe", map[string]string{"routes": "a=1", "binary": "/nonexistent/haproxy"}, ocf.ActionMonitor, probe, ocf.NotRunning, ""},
		{"haproxy missing, stop", map[string]string{"routes": "a=1", "binary": "/nonexistent/haproxy"}, ocf.ActionStop, nil, ocf.Success, ""},
		{"port in use", map[string]string{"routes": "a=" + busy.Addr().String(), "binary": "/bin/true"}, ocf.ActionStart, nil, ocf.InvalidArgs, "cannot listen on " + busy.Addr().String()},
		{"slots out of range", map[string]string{"routes": "a=1", "slots": "0"}, ocf.ActionValidateAll, nil, ocf.Misconfigured, "parameter slots"},
		{"https consul", map[string]string{"routes": "a=1", "consul_address": "https://127.0.0.1:8501"}, ocf.ActionValidateAll, nil, ocf.Misconfigured, "use a plain HTTP address"},
		{"token file readable by others", map[string]string{"routes": "a=1", "token_file": loose}, ocf.ActionStart, nil, ocf.InvalidArgs, "chmod 600"},
		{"socket path too long", map[string]string{"routes": "a=1", "socket": "/" + strings.Repeat("x", 120)}, ocf.ActionStart, nil, ocf.InvalidArgs, "HAProxy takes at most 97 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "haproxy-dynamic", Params: tt.params})
			got := r.Run(tt.action, tt.extra)
			// A row without reason text asserts there is none: a success or a
			// clean "not running" writes no exit reason; a failure must name one.
			if tt.reason == "" && (got.Reason != "" || (tt.want != ocf.Success && tt.want != ocf.NotRunning)) {
				t.Errorf("%s = %v %q: a row expecting %v must name its reason, or expect none", tt.action, got.Code, got.Reason, tt.want)
			}
			if got.Code != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Fatalf("%s = %v %q, want %v with a reason containing %q\n%s", tt.action, got.Code, got.Reason, tt.want, tt.reason, got.Stderr)
			}
			if strings.Contains(got.Reason, "\n") {
				t.Errorf("reason spans lines: %q", got.Reason)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "haproxy-dynamic"})
	got := r.Run(ocf.ActionMetaData, nil)
	if got.Code != ocf.Success {
		t.Fatalf("meta-data: %v", got.Code)
	}
	ocftest.ValidateMetadata(t, []byte(got.Stdout))
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A route kept by none_passing=keep is reported once it has been kept
// for keep_degraded_after: a failover that ends sooner changes no
// monitor result, so Pacemaker's DC does not recalculate its transition
// twice in the middle of it.
func TestKeptRoutesAfter(t *testing.T) {
	now := time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)
	st := &watcher.Status{Routes: map[string]watcher.RouteStatus{
		"web":   {Kept: []string{"10.0.0.2:80"}, KeptSince: now.Add(-10 * time.Second)},
		"db":    {Kept: []string{"10.0.0.3:5432"}, KeptSince: now.Add(-2 * time.Minute)},
		"old":   {Kept: []string{"10.0.0.4:80"}}, // a watcher that does not say since when
		"fine":  {Instances: []string{"10.0.0.5:80"}},
		"empty": {},
	}}
	for _, tt := range []struct {
		after time.Duration
		want  string
	}{
		{0, "db (10.0.0.3:5432), old (10.0.0.4:80), web (10.0.0.2:80)"},
		{10 * time.Second, "db (10.0.0.3:5432), old (10.0.0.4:80), web (10.0.0.2:80)"},
		{time.Minute, "db (10.0.0.3:5432), old (10.0.0.4:80)"},
		{time.Hour, "old (10.0.0.4:80)"},
	} {
		if got := keptRoutes(st, tt.after, now); got != tt.want {
			t.Errorf("keptRoutes(after %s) = %q, want %q", tt.after, got, tt.want)
		}
	}
}
