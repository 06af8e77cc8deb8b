package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
)

// attempt bounds one readiness attempt, so that a daemon that accepts but
// never answers cannot hold a start past its next liveness check.
const attempt = 2 * time.Second

func attemptCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, attempt)
}

// TCP returns a Check that succeeds when a TCP connection to the address
// addr gives (host:port) is accepted and the daemon (or a member of its
// process group) is the one listening there: another program holding the
// port does not make the daemon ready. An unspecified host (0.0.0.0, ::
// or empty) is reached on loopback.
func TCP[C any](addr func(c *C) string) Check[C] {
	return func(ctx context.Context, r *ocf.Request[C], p Process) error {
		a := loopbackFor(addr(r.Config))
		ctx, cancel := attemptCtx(ctx)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			return fmt.Errorf("no TCP connection to %s: %w", a, err)
		}
		conn.Close()
		_, portText, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(portText)
		if ours, err := listening(p.PID, port); err == nil && !ours {
			return fmt.Errorf("another process, not pid %d, listens on %s", p.PID, a)
		}
		return nil
	}
}

// Unix returns a Check that succeeds when a connection to the unix socket
// at the path path gives is accepted.
func Unix[C any](path func(c *C) string) Check[C] {
	return func(ctx context.Context, r *ocf.Request[C], p Process) error {
		s := path(r.Config)
		ctx, cancel := attemptCtx(ctx)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", s)
		if err != nil {
			return fmt.Errorf("no connection to unix socket %s: %w", s, err)
		}
		return conn.Close()
	}
}

// HTTP returns a Check that succeeds when a GET of the URL that url gives
// is answered with status want (200 when 0) and, when the URL's host is
// this machine's loopback (127.0.0.0/8, ::1, localhost) or unspecified
// (0.0.0.0, ::), the daemon (or a member of its process group) is the one
// listening on its port, as for TCP: another server holding the port does
// not make the daemon ready while it fails to bind. A Process without a
// PID (a check run outside a Daemon) skips that part. Redirects are not
// followed, and no proxy from the environment is used.
func HTTP[C any](url func(c *C) string, want int) Check[C] {
	if want == 0 {
		want = http.StatusOK
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return func(ctx context.Context, r *ocf.Request[C], p Process) error {
		u := url(r.Config)
		ctx, cancel := attemptCtx(ctx)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return ocf.Errorf(ocf.Misconfigured, "readiness URL %q: %w", u, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("GET %s: status %d, want %d", u, resp.StatusCode, want)
		}
		if port := localPort(req.URL); port != 0 && p.PID > 0 {
			if ours, err := listening(p.PID, port); err == nil && !ours {
				return fmt.Errorf("GET %s: another process, not pid %d, listens on port %d", u, p.PID, port)
			}
		}
		return nil
	}
}

// localPort returns the port of u when its host is this machine's loopback
// or unspecified address, where the daemon itself must listen; 0 otherwise.
func localPort(u *neturl.URL) int {
	host := u.Hostname()
	if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback() && !ip.IsUnspecified()) {
		return 0
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	n, _ := strconv.Atoi(port)
	return n
}

// loopbackFor turns a listen address into one to connect to.
func loopbackFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if ip != nil && ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, port)
}
