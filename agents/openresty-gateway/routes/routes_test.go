package routes

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	got, err := Parse("/orders/=orders=127.0.0.1:8081, API.example.com/=web=https://10.0.0.1:8443=mtls /v1=v1=http://backend.local:80")
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{Prefix: "/orders/", Service: "orders", Upstream: "http://127.0.0.1:8081"},
		{Host: "api.example.com", Prefix: "/", Service: "web", Upstream: "https://10.0.0.1:8443", MTLS: true},
		{Prefix: "/v1", Service: "v1", Upstream: "http://backend.local:80"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	bad := []struct{ in, reason string }{
		{"", "no routes"},
		{"/a=a", "[HOST]/PATH=SERVICE=UPSTREAM"},
		{"/a=a=127.0.0.1:1=tls", "[HOST]/PATH=SERVICE=UPSTREAM"},
		{"a=a=127.0.0.1:1", "must begin with /"},
		{"/a b=a=127.0.0.1:1", "[HOST]/PATH"},
		{"/a{=a=127.0.0.1:1", "only letters"},
		{"/a/../b=a=127.0.0.1:1", ". or .."},
		{"/a//b=a=127.0.0.1:1", "//"},
		{"ex_ample.com/=a=127.0.0.1:1", "not a DNS name"},
		{"/a=a$=127.0.0.1:1", "service"},
		{"/a=a=ftp://127.0.0.1:1", "scheme"},
		{"/a=a=127.0.0.1", "host:port"},
		{"/a=a=127.0.0.1:0", "host:port"},
		{"/a=a=http://u:p@127.0.0.1:1", "no path"},
		{"/a=a=127.0.0.1:1,/a=b=127.0.0.1:2", "appears twice"},
	}
	for _, c := range bad {
		if _, err := Parse(c.in); err == nil || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", c.in, err, c.reason)
		}
	}
}

func TestParseFile(t *testing.T) {
	got, err := ParseFile([]byte(`{"routes": [{"host": "a.example", "path": "/x/", "service": "x", "upstream": "127.0.0.1:1", "mtls": true}]}`))
	if err != nil || len(got) != 1 || !got[0].MTLS || got[0].Upstream != "http://127.0.0.1:1" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := ParseFile([]byte(`{"routes": [{"path": "/x/", "service": "x", "upstream": "127.0.0.1:1", "tls": true}]}`)); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("unknown field: %v", err)
	}
}

// FuzzParse: an accepted route table can be written into nginx.conf
// without quoting (no white space, quotes, braces or semicolons).
func FuzzParse(f *testing.F) {
	f.Add("/orders/=orders=127.0.0.1:8081,api.example.com/=web=https://10.0.0.1:8443=mtls")
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := Parse(in)
		if err != nil {
			return
		}
		for _, r := range rs {
			for _, v := range []string{r.Host, r.Prefix, r.Service, r.Upstream} {
				if strings.ContainsAny(v, " \t\n\"';{}$\\#") {
					t.Fatalf("accepted %q in %+v", v, r)
				}
			}
		}
	})
}
