package watcher

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
)

// FuzzParseHealth feeds arbitrary health answers through everything the
// watcher does with one: parse, extract addresses, filter. The parse,
// which decodes as the answer arrives, must agree with a decode of the
// whole answer at once (parseHealthWhole). It must never
// panic, only routable unicast addresses with a port may come out, and a
// skipped entry's description must hold no control characters (it goes
// into logs and the status file).
func FuzzParseHealth(f *testing.F) {
	if data, err := os.ReadFile("testdata/health-service.json"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		`[{"Node": null, "Service": {"ID": "x", "Port": 80}}]`,
		`[{"Node": {"Address": "10.0.0.1"}, "Service": null}]`,
		`[null]`, `null`, `[]`, `{}`, `[42]`, `[1,]`, `[] []`, `null x`, ` [ ] `, `[{"Node": {}, "Service": {"Port": "80"}}]`,
		`[{"Node": {}, "Service": {"Address": "127.0.0.1", "Port": 8081}}]`,
		`[{"Node": {}, "Service": {"Address": "fe80::1%eth0", "Port": 80}}]`,
		`[{"Node": {}, "Service": {"Address": "0.0.0.0", "Port": 80}}]`,
		`[{"Node": {}, "Service": {"ID": "\u001b[2J", "Address": "::ffff:1.2.3.4", "Port": -1}}]`,
	} {
		f.Add([]byte(s))
	}
	filter := NewFilter([]routes.Route{{Service: "web", Listen: netip.MustParseAddrPort("127.0.0.1:8081")}})
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, skipped, err := ParseHealth(data)
		wantEntries, wantSkipped, wantErr := parseHealthWhole(data)
		if (err == nil) != (wantErr == nil) || !slices.Equal(entries, wantEntries) || !slices.Equal(skipped, wantSkipped) {
			t.Fatalf("streaming parse = %v, %q, %v; parse of the whole answer = %v, %q, %v",
				entries, skipped, err, wantEntries, wantSkipped, wantErr)
		}
		if err != nil {
			if entries != nil || skipped != nil {
				t.Fatal("an error with entries")
			}
			return
		}
		addrs, bad := Addrs(entries)
		ok, refused := filter.Split(addrs)
		for _, a := range ok {
			ip := a.Addr()
			if a.Port() == 0 || !ip.IsValid() || ip.Zone() != "" || ip.Is4In6() || ip.IsUnspecified() || ip.IsMulticast() ||
				a == netip.MustParseAddrPort("127.0.0.1:8081") {
				t.Fatalf("unroutable %v accepted", a)
			}
		}
		if len(ok)+len(refused) > len(entries) {
			t.Fatalf("%d instances out of %d entries", len(ok)+len(refused), len(entries))
		}
		for _, s := range append(append(skipped, bad...), refused...) {
			if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("skipped description %q holds control characters", s)
			}
		}
	})
}

// parseHealthWhole is ParseHealth as it was before it decoded answers as
// they arrive: json.Unmarshal of the whole answer, then of each entry.
func parseHealthWhole(data []byte) (entries []Entry, skipped []string, err error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("health answer is not a JSON array: %v", err)
	}
	for i, r := range raw {
		var e healthEntry
		if err := json.Unmarshal(r, &e); err != nil {
			skipped = append(skipped, fmt.Sprintf("entry %d: malformed: %v", i, err))
			continue
		}
		entry, ok := e.entry()
		if !ok {
			skipped = append(skipped, fmt.Sprintf("entry %d: no Node or no Service", i))
			continue
		}
		entries = append(entries, entry)
	}
	return entries, skipped, nil
}

// FuzzHealthAnswer feeds arbitrary bytes as Consul's whole HTTP answer
// (status line, headers, framing, body) to a route's query, which reads
// it with the route's own connection handling. It must never panic or
// hang, and an answer it accepts must come out of the same parse as a
// body read whole.
func FuzzHealthAnswer(f *testing.F) {
	body := `[{"Node": {"Address": "10.0.0.1"}, "Service": {"ID": "web-1", "Port": 80}}]`
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nX-Consul-Index: 7\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Consul-Index: 9\r\n\r\n5\r\n[null\r\n1\r\n]\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[]",
		"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom",
		"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n\x1f\x8b",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n[",
		"HTTP/1.0 200 OK\r\n\r\n[] x",
		"garbage",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		h := newHealthClient("127.0.0.1:8500", "", "", 2*time.Second)
		h.dial = func(ctx context.Context, addr string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				// The query first, read to its blank line, then the answer.
				br := bufio.NewReader(server)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				server.Write(answer)
			}()
			return client, nil
		}
		defer h.close()
		entries, _, _, err := h.service(context.Background(), "web", "", 0, 0)
		if err != nil {
			return
		}
		resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), nil)
		if rerr != nil {
			t.Fatalf("accepted an answer net/http cannot read: %v", rerr)
		}
		whole, werr := io.ReadAll(resp.Body)
		if werr != nil {
			t.Fatalf("accepted an answer whose body net/http cannot read: %v", werr)
		}
		want, _, perr := ParseHealth(whole)
		if perr != nil || !slices.Equal(entries, want) {
			t.Fatalf("entries %v; parse of the whole body: %v, %v", entries, want, perr)
		}
	})
}
