package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWaitLine(t *testing.T) {
	tests := []struct {
		name  string
		what  string
		since time.Duration
		why   string
		width int
		want  string
	}{
		{"no reason", "consul leader", 12400 * time.Millisecond, "", 80, "  waiting for consul leader ... 12s"},
		{"reason", "consul leader", 3 * time.Second, "leader \"\"", 80, `  waiting for consul leader ... 3s (leader "")`},
		{"minutes", "cluster ready", 125 * time.Second, "n1: no DC", 80, "  waiting for cluster ready ... 2m05s (n1: no DC)"},
		{"newlines folded", "x", time.Second, "a\n  b\tc", 80, "  waiting for x ... 1s (a b c)"},
		{"a failed command's output dropped", "cluster ready", 4 * time.Second,
			"n1: crm_mon -1 --output-as=xml: exit status 102: <pacemaker-result api-version=\"2.25\">\n<status code=\"102\"/>", 110,
			"  waiting for cluster ready ... 4s (n1: crm_mon -1 --output-as=xml: exit status 102)"},
		{"reason cut to the width", "x", time.Second, strings.Repeat("é", 40), 40, "  waiting for x ... 1s (éééééé…)"},
		{"no room for a reason", "a very long thing to wait for", time.Second, "why", 40, "  waiting for a very long thing to wa…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := waitLine(tt.what, tt.since, tt.why, tt.width)
			if got != tt.want {
				t.Errorf("waitLine = %q, want %q", got, tt.want)
			}
			if len(got) > tt.width {
				t.Errorf("waitLine is %d bytes, wider than %d", len(got), tt.width)
			}
		})
	}
}

func TestProgressNotTerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progress{out: &b, every: time.Hour}
	p.Waiting("consul leader", time.Second, "")
	p.Waiting("consul leader", 2*time.Second, "") // within every: not shown
	p.Waiting("web", 3*time.Second, "")           // something else: shown
	p.Printf("done")
	want := "  waiting for consul leader ... 1s\n  waiting for web ... 3s\ndone\n"
	if b.String() != want {
		t.Errorf("output %q, want %q", b.String(), want)
	}
}

func TestProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progress{out: &b, tty: true}
	p.Waiting("x", time.Second, "")
	p.Waiting("x", 2*time.Second, "")
	p.Printf("done")
	want := "\r\033[K  waiting for x ... 1s\r\033[K  waiting for x ... 2s\r\033[Kdone\n"
	if b.String() != want {
		t.Errorf("output %q, want %q", b.String(), want)
	}
}
