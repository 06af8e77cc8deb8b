package stackclient

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
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
	"github.com/ha-framework/ha-framework/testcluster/stackfiles"
)

// TestTampered: a token of the stack's issuer verifies, its forgery (the
// subject changed, the signature kept) does not.
func TestTampered(t *testing.T) {
	dir := t.TempDir()
	f, err := stackfiles.Write(dir, dir, nil, "web", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.Token("alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := os.ReadFile(filepath.Join(dir, stackfiles.JWTKeyName))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemData)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(tok string) error {
		_, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"RS256"}))
		return err
	}
	if err := verify(tok); err != nil {
		t.Fatalf("the issuer's token does not verify: %v", err)
	}
	forged, err := Tampered(tok, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(forged); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("a forged token: error %v, want a signature failure", err)
	}
	p, _, err := jwt.NewParser().ParseUnverified(forged, jwt.MapClaims{})
	if err != nil || p.Claims.(jwt.MapClaims)["sub"] != "admin" || p.Claims.(jwt.MapClaims)["aud"] != "web" {
		t.Errorf("the forged token does not claim sub admin with the rest kept: %v %v", p, err)
	}
	for _, bad := range []string{"a.b", "a.!!!.c", "a.bm90IGpzb24.c"} {
		if _, err := Tampered(bad, "x"); err == nil {
			t.Errorf("Tampered(%q): no error", bad)
		}
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

func TestCall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			fmt.Fprint(w, " node1\n")
		default:
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, "<html>401</html>")
		}
	}))
	defer srv.Close()
	if s := Call(context.Background(), srv.Client(), srv.URL, "good"); !s.OK() || s.Who != "node1" || s.Err != "" || s.End.Before(s.Start) {
		t.Errorf("served: %+v, want 200 from node1", s)
	}
	if s := Call(context.Background(), srv.Client(), srv.URL, "bad"); s.OK() || s.Status != 401 || s.Who != "" {
		t.Errorf("refused: %+v, want 401 and no Who", s)
	}
	srv.Close()
	if s := Call(context.Background(), srv.Client(), srv.URL, "good"); s.Status != 0 || s.Err == "" {
		t.Errorf("no server: %+v, want no status and an error", s)
	}
}

func TestMeasure(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	ok := func(start, end int, who string) Sample {
		return Sample{Start: at(start), End: at(end), Status: 200, Who: who}
	}
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
		fmt.Fprint(w, "n1")
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
