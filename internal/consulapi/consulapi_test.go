package consulapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf"
)

func TestCheckAddress(t *testing.T) {
	tests := []struct {
		in         string
		ok         bool
		scheme, hp string
	}{
		{"127.0.0.1:8500", true, "http", "127.0.0.1:8500"},
		{"http://localhost:8500", true, "http", "localhost:8500"},
		{"https://consul.local:8501", true, "https", "consul.local:8501"},
		{"https://[::1]:8501", true, "https", "[::1]:8501"},
		{"127.0.0.1", false, "", ""},
		{"http://127.0.0.1:0", false, "", ""},
		{"http://127.0.0.1:65536", false, "", ""},
		{":8500", false, "", ""},
		{"ftp://127.0.0.1:8500", false, "", ""},
		{"http://user@127.0.0.1:8500", false, "", ""},
		{"http://127.0.0.1:8500/prefix", false, "", ""},
		{"", false, "", ""},
	}
	for _, tt := range tests {
		scheme, hp, err := splitAddress(tt.in)
		if (err == nil) != tt.ok || scheme != tt.scheme || hp != tt.hp {
			t.Errorf("splitAddress(%q) = %q, %q, %v; want ok=%v %q %q", tt.in, scheme, hp, err, tt.ok, tt.scheme, tt.hp)
		}
		if err := CheckAddress(tt.in); (err == nil) != tt.ok {
			t.Errorf("CheckAddress(%q) = %v", tt.in, err)
		}
	}
}

// TestParams declares the parameters in an agent and reads its meta-data:
// the five names, with reloadable following the argument.
func TestParams(t *testing.T) {
	for _, reloadable := range []bool{false, true} {
		t.Run(fmt.Sprint("reloadable=", reloadable), func(t *testing.T) {
			a := &ocf.Agent[Config]{
				Name: "p", Params: func(c *Config) []ocf.Param { return Params(c, reloadable) },
				Start:   func(context.Context, *ocf.Request[Config]) error { return nil },
				Stop:    func(context.Context, *ocf.Request[Config]) error { return nil },
				Monitor: func(context.Context, *ocf.Request[Config]) (ocf.State, error) { return ocf.Stopped, nil },
			}
			if err := a.CheckDeclaration(); err != nil {
				t.Fatal(err)
			}
			var meta strings.Builder
			if err := a.WriteMetadata(&meta); err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromString(meta.String()); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"consul_address", "token_file", "ca_file", "cert_file", "key_file"} {
				p := doc.FindElement("//parameter[@name='" + name + "']")
				if p == nil {
					t.Errorf("no parameter %s in the meta-data", name)
					continue
				}
				if got := p.SelectAttrValue("reloadable", "0") == "1"; got != reloadable {
					t.Errorf("%s reloadable = %v, want %v", name, got, reloadable)
				}
				if p.FindElement("longdesc") == nil || strings.TrimSpace(p.FindElement("longdesc").Text()) == "" {
					t.Errorf("%s has no long description", name)
				}
			}
			if d := doc.FindElement("//parameter[@name='consul_address']/content"); d == nil || d.SelectAttrValue("default", "") != DefaultAddress {
				t.Errorf("consul_address has no default %s", DefaultAddress)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open-token")
	if err := os.WriteFile(open, []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	pem := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(pem, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := Config{Address: "https://127.0.0.1:8501", TokenFile: token, CAFile: pem}.Options()
	if err != nil || o.Token != "s3cret" || o.CAFile != pem || o.Address != "https://127.0.0.1:8501" {
		t.Errorf("Options() = %+v, %v", o, err)
	}
	tests := []struct {
		name   string
		cfg    Config
		code   ocf.Code
		reason string
	}{
		{"bad address", Config{Address: "consul"}, ocf.Misconfigured, `consul_address="consul" is invalid`},
		{"cert without key", Config{Address: DefaultAddress, CertFile: pem}, ocf.Misconfigured, "cert_file and key_file go together"},
		{"relative ca", Config{Address: DefaultAddress, CAFile: "ca.pem"}, ocf.Misconfigured, `ca_file="ca.pem" must be an absolute path`},
		{"missing ca", Config{Address: DefaultAddress, CAFile: dir + "/none.pem"}, ocf.InvalidArgs, "ca_file: " + dir + "/none.pem is missing on this node"},
		{"missing token", Config{Address: DefaultAddress, TokenFile: dir + "/none"}, ocf.InvalidArgs, "token_file file " + dir + "/none does not exist"},
		{"token readable by others", Config{Address: DefaultAddress, TokenFile: open}, ocf.InvalidArgs, "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.Options()
			if ocf.CodeOf(err) != tt.code || !strings.Contains(ocf.ReasonOf(err), tt.reason) {
				t.Errorf("Options() = %v (%v), want %v with %q", err, ocf.CodeOf(err), tt.code, tt.reason)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := NewClient(context.Background(), Options{Address: "nowhere"}); err == nil {
		t.Error("New with a malformed address succeeded")
	}
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(context.Background(), Options{Address: "https://127.0.0.1:8501", CAFile: junk}); err == nil {
		t.Error("New with a CA file that is not PEM succeeded")
	}
	if _, err := NewClient(context.Background(), Options{Address: "https://127.0.0.1:8501", CertFile: junk, KeyFile: junk}); err == nil {
		t.Error("New with a client certificate that is not PEM succeeded")
	}
}

// recordingTransport stands in for the network below guard: it records
// the request guard passes on, and answers 200.
type recordingTransport struct {
	req         *http.Request
	hasDeadline bool
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.req = req
	_, r.hasDeadline = req.Context().Deadline()
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}")), Header: http.Header{}}, nil
}

// TestGuard: whatever the api package took from the environment, the
// request carries exactly the configured token and no namespace or
// partition, and a request without a deadline gets one.
func TestGuard(t *testing.T) {
	for _, token := range []string{"", "mine"} {
		next := &recordingTransport{}
		g := &guard{next: next, token: token}
		req, _ := http.NewRequest("GET", "http://127.0.0.1:8500/v1/kv/x?ns=team&partition=p&index=3", nil)
		req.Header.Set("X-Consul-Token", "from-the-environment")
		resp, err := g.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := next.req.Header.Get("X-Consul-Token"); got != token {
			t.Errorf("token sent = %q, want %q", got, token)
		}
		if got := next.req.URL.RawQuery; got != "index=3" {
			t.Errorf("query sent = %q, want only index=3", got)
		}
		if !next.hasDeadline {
			t.Error("a request without a deadline was sent without one")
		}
		if req.Header.Get("X-Consul-Token") != "from-the-environment" {
			t.Error("guard changed the caller's request")
		}
	}
	next := &recordingTransport{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:8500/v1/agent/self", nil)
	if resp, err := (&guard{next: next}).RoundTrip(req); err == nil {
		resp.Body.Close()
	}
	if !next.hasDeadline {
		t.Error("a request whose context has no deadline was sent without one")
	}
}

func TestErrorTests(t *testing.T) {
	forbidden := api.StatusError{Code: 403, Body: "Permission denied: token lacks service:write\nmore"}
	wrapped := fmt.Errorf("registering: %w", forbidden)
	if code, ok := StatusCode(wrapped); !ok || code != 403 {
		t.Errorf("StatusCode = %d, %v", code, ok)
	}
	if !IsForbidden(wrapped) || IsNotFound(wrapped) || IsUnreachable(wrapped) {
		t.Errorf("403: IsForbidden %v, IsNotFound %v, IsUnreachable %v", IsForbidden(wrapped), IsNotFound(wrapped), IsUnreachable(wrapped))
	}
	if got := Describe(wrapped); got != "403 Permission denied: token lacks service:write" {
		t.Errorf("Describe(403) = %q", got)
	}
	// What net/http returns when the agent answers a new connection with
	// its 429 before any request (over its connections per client).
	closed := &url.Error{Op: "Get", URL: "http://127.0.0.1:8500/v1/agent/services", Err: fmt.Errorf("readLoopPeekFailLocked: %w", error(nil))}
	if got := Describe(closed); strings.Contains(got, "%!") || !strings.Contains(got, "connection closed") {
		t.Errorf("Describe(a connection the agent closed) = %q, want it to say the connection was closed", got)
	}
	if !IsNotFound(&api.StatusError{Code: 404}) {
		t.Error("IsNotFound(*StatusError 404) = false")
	}
	for _, err := range []error{nil, errors.New("plain"), context.DeadlineExceeded} {
		if IsUnreachable(err) || IsForbidden(err) {
			t.Errorf("%v: unreachable or forbidden", err)
		}
	}
	long := strings.Repeat("é", 100)
	if got := firstLine(long, 20); len(got) > 20 || !strings.HasSuffix(got, "...") || !strings.HasPrefix(got, "éééé") {
		t.Errorf("firstLine cut = %q", got)
	}
}
