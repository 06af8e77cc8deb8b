package stackkit

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
)

func TestIssuerTokensAndPolicy(t *testing.T) {
	is, err := NewIssuer("https://idp.test", "api", "k1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pub, err := is.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "idp.pem")
	if err := os.WriteFile(keyFile, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := is.Policy(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's own parser and loader accept the policy.
	f, err := policy.Parse(data)
	if err != nil {
		t.Fatalf("policy.Parse: %v\n%s", err, data)
	}
	if _, err := policy.Load(f); err != nil {
		t.Fatalf("policy.Load: %v", err)
	}

	tok, err := is.Token("alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(tok string) (jwt.MapClaims, error) {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return &is.key.PublicKey, nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("https://idp.test"), jwt.WithAudience("api"), jwt.WithExpirationRequired())
		return claims, err
	}
	claims, err := verify(tok)
	if err != nil {
		t.Fatalf("a token of the issuer does not verify: %v", err)
	}
	if claims["sub"] != "alice" {
		t.Errorf("sub %v, want alice", claims["sub"])
	}

	forged, err := Tampered(tok, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if forged == tok {
		t.Fatal("Tampered returned the token unchanged")
	}
	if _, err := verify(forged); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("a forged token: error %v, want a signature failure", err)
	}
	p, _, _ := jwt.NewParser().ParseUnverified(forged, jwt.MapClaims{})
	if p == nil || p.Claims.(jwt.MapClaims)["sub"] != "admin" {
		t.Errorf("the forged token does not claim sub admin")
	}
	if _, err := Tampered("a.b", "x"); err == nil || !strings.Contains(err.Error(), "three segments") {
		t.Errorf("Tampered of a non-JWS: error %v, want one naming three segments", err)
	}
}

func TestAllowSubjects(t *testing.T) {
	data, err := AllowSubjects(2, "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	d, err := acl.Parse(data)
	if err != nil {
		t.Fatalf("acl.Parse: %v\n%s", err, data)
	}
	if d.Version != 2 || d.Mode != "enforce" || len(d.Rules) != 1 || !cmp.Equal(d.Rules[0].Subjects, []string{"alice", "bob"}) || d.Rules[0].Action != "allow" {
		t.Errorf("document %+v", d)
	}
}

func TestCAServer(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Server("gw", []string{"127.0.0.1", "node1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ServedBy, "node1")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	s := Call(context.Background(), c, srv.URL, "")
	if !s.OK() || s.Who != "node1" {
		t.Errorf("through the CA's certificate: %+v", s)
	}
	// Another CA is not trusted.
	other, _ := NewCA("other", time.Hour)
	c = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: other.Pool()}}}
	if s := Call(context.Background(), c, srv.URL, ""); s.OK() || !strings.Contains(s.Err, "certificate") {
		t.Errorf("with another CA: %+v, want a certificate error", s)
	}
}

func TestMeasure(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	ok := func(start, end int, who string) Sample { return Sample{Start: at(start), End: at(end), Status: 200, Who: who} }
	bad := func(start, end, status int) Sample { return Sample{Start: at(start), End: at(end), Status: status} }
	fault := at(10_000)
	tests := []struct {
		name  string
		ss    []Sample
		avoid string
		want  Outage
	}{{
		name: "held requests, answered by the new node",
		ss: []Sample{ok(9_800, 9_810, "n2"), ok(9_920, 9_930, "n2"),
			ok(10_040, 16_040, "n3"), // held by the proxy's retries
			ok(16_150, 16_160, "n3")},
		avoid: "n2",
		want: Outage{Fault: fault, Before: "n2", Recovered: at(16_040), After: "n3", Served: 4, Requests: 4,
			Gap: 6_040 * time.Millisecond, Slowest: 6_000 * time.Millisecond},
	}, {
		name: "failures, then an answer from the lost node's replacement",
		ss: []Sample{ok(9_900, 9_910, "n2"), bad(10_020, 11_020, 502), bad(11_120, 12_120, 0),
			ok(12_220, 12_230, "n2"), // started after the fault, but from the avoided node
			ok(12_340, 12_350, "n1")},
		avoid: "n2",
		want: Outage{Fault: fault, Before: "n2", Recovered: at(12_350), After: "n1", Served: 3, Failed: 2, Requests: 5,
			Gap: 2_230 * time.Millisecond, Slowest: time.Second},
	}, {
		name: "a crash: the same node answers again",
		ss:   []Sample{ok(9_950, 9_960, "n1"), ok(10_070, 11_500, "n1"), ok(11_600, 11_610, "n1")},
		want: Outage{Fault: fault, Before: "n1", Recovered: at(11_500), After: "n1", Served: 3, Requests: 3,
			Gap: 1_500 * time.Millisecond, Slowest: 1_430 * time.Millisecond},
	}, {
		name: "never served again",
		ss:   []Sample{ok(9_950, 9_960, "n1"), bad(10_070, 11_070, 0)},
		want: Outage{Fault: fault, Before: "n1", Served: 1, Failed: 1, Requests: 2, Slowest: time.Second},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Measure(tt.ss, fault, tt.avoid)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Measure (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoopStops(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		n++
		w.Header().Set(ServedBy, "n1")
	}))
	defer srv.Close()
	var seen int
	ss := Loop(context.Background(), srv.Client(), srv.URL, "tok", time.Millisecond, 100,
		func(ss []Sample) bool { return len(ss) == 3 }, func(Sample) { seen++ })
	if len(ss) != 3 || seen != 3 || n != 3 || !ss[2].OK() || ss[2].Who != "n1" {
		t.Errorf("Loop until 3 samples: %d samples, %d seen, %d served: %+v", len(ss), seen, n, ss)
	}
	ss = Loop(context.Background(), srv.Client(), srv.URL, "tok", time.Millisecond, 5, nil, nil)
	if len(ss) != 5 {
		t.Errorf("Loop of at most 5: %d samples", len(ss))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ss := Loop(ctx, srv.Client(), srv.URL, "tok", time.Millisecond, 5, nil, nil); len(ss) != 0 {
		t.Errorf("Loop with an ended context: %d samples", len(ss))
	}
}
