package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{"empty", nil, 50, nan},
		{"p below range", []float64{1}, -1, nan},
		{"p above range", []float64{1}, 101, nan},
		{"p NaN", []float64{1}, nan, nan},
		{"single value, median", []float64{4}, 50, 4},
		{"single value, p90", []float64{4}, 90, 4},
		{"odd count, median is middle", []float64{3, 1, 2}, 50, 2},
		{"even count, median is mean of middle two", []float64{4, 1, 3, 2}, 50, 2.5},
		{"min", []float64{5, 1, 9}, 0, 1},
		{"max", []float64{5, 1, 9}, 100, 9},
		{"p90 of 1..10 interpolates", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 90, 9.1},
		{"p90 of 1..11 hits a rank", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 90, 10},
		{"duplicates", []float64{2, 2, 2, 7}, 50, 2},
		{"outlier does not move the median", []float64{1, 1.1, 1.2, 1000}, 50, 1.15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.xs...)
			got := percentile(tt.xs, tt.p)
			if !sameFloat(got, tt.want) {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.xs, tt.p, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.xs[i] {
					t.Fatalf("percentile sorted its input: %v, was %v", tt.xs, in)
				}
			}
			if tt.p == 50 && !sameFloat(median(tt.xs), tt.want) {
				t.Errorf("median(%v) = %v, want %v", tt.xs, median(tt.xs), tt.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		name   string
		a, b   float64
		want   float64
		wantOK bool
	}{
		{"equal", 2, 2, 1, true},
		{"agent slower than true", 1.3, 1, 1.3, true},
		{"shell faster than agent", 1, 4, 0.25, true},
		{"zero numerator", 0, 3, 0, true},
		{"zero denominator", 1, 0, 0, false},
		{"negative denominator", 1, -1, 0, false},
		{"negative numerator", -1, 1, 0, false},
		{"NaN median", math.NaN(), 1, 0, false},
		{"infinite", 1, math.Inf(1), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ratio(tt.a, tt.b)
			if ok != tt.wantOK || (ok && !sameFloat(got, tt.want)) {
				t.Errorf("ratio(%v, %v) = %v, %v; want %v, %v", tt.a, tt.b, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestBound(t *testing.T) {
	tests := []struct {
		name string
		b    bound
		r    float64
		want bool
		str  string
	}{
		{"at most, below", bound{AtMost: true, Limit: 1.3}, 1.2, true, "<= 1.3x"},
		{"at most, on the limit", bound{AtMost: true, Limit: 1.3}, 1.3, true, "<= 1.3x"},
		{"at most, above", bound{AtMost: true, Limit: 1.3}, 1.31, false, "<= 1.3x"},
		{"at least, above", bound{Limit: 3}, 3.5, true, ">= 3x"},
		{"at least, on the limit", bound{Limit: 3}, 3, true, ">= 3x"},
		{"at least, below", bound{Limit: 3}, 2.9, false, ">= 3x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.met(tt.r); got != tt.want {
				t.Errorf("%v met(%v) = %v, want %v", tt.b, tt.r, got, tt.want)
			}
			if got := tt.b.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
		})
	}
}

func TestRatios(t *testing.T) {
	stats := []stat{
		{Candidate: nameTrue, Action: "meta-data", MedianMs: 1},
		{Candidate: nameTrue, Action: "monitor", MedianMs: 1},
		{Candidate: nameAgent, Action: "meta-data", MedianMs: 1.2},
		{Candidate: nameAgent, Action: "monitor", MedianMs: 2},
		{Candidate: nameHeartbeat, Action: "meta-data", MedianMs: 6},
		{Candidate: nameHeartbeat, Action: "monitor", MedianMs: 4},
		// pacemaker-Dummy skipped: no stats.
	}
	type row struct {
		name, action string
		value        float64 // NaN: null
		met          string  // "": null
	}
	want := []row{
		{"agent/true", "meta-data", 1.2, "yes"},
		{"agent/true", "monitor", 2, "no"},
		{"heartbeat-Dummy/agent", "meta-data", 5, "yes"},
		{"heartbeat-Dummy/agent", "monitor", 2, "no"},
		{"pacemaker-Dummy/agent", "meta-data", math.NaN(), ""},
		{"pacemaker-Dummy/agent", "monitor", math.NaN(), ""},
	}
	got := ratios(stats)
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		value, met := math.NaN(), ""
		if g.Value != nil {
			value = *g.Value
		}
		if g.Met != nil {
			met = map[bool]string{true: "yes", false: "no"}[*g.Met]
		}
		if g.Name != w.name || g.Action != w.action || !sameFloat(value, w.value) || met != w.met {
			t.Errorf("row %d = {%s %s %v %s}, want %+v", i, g.Name, g.Action, value, met, w)
		}
	}
}

func TestStatusKiB(t *testing.T) {
	status := "Name:\tsh\nVmPeak:\t    2480 kB\nVmHWM:\t    1836 kB\nVmRSS:\t    1800 kB\n"
	tests := []struct {
		name, status, field string
		want                int64
		wantErr             bool
	}{
		{"VmHWM", status, "VmHWM", 1836, false},
		{"VmRSS", status, "VmRSS", 1800, false},
		{"prefix of another field", status, "VmH", 0, true},
		{"missing, as for a zombie", "Name:\tsh\nState:\tZ (zombie)\n", "VmHWM", 0, true},
		{"no unit", "VmHWM:\t12\n", "VmHWM", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := statusKiB(tt.status, tt.field)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("statusKiB(%q) = %v, %v; want %v, error %v", tt.field, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestBench runs the whole benchmark on tiny stand-ins: a shell script
// that answers like an OCF agent, and a "Dummy" that is not installed.
func TestBench(t *testing.T) {
	dir := t.TempDir()
	agent := script(t, dir, "agent", `case "$1" in meta-data) echo '<resource-agent/>';; monitor) exit 7;; *) exit 3;; esac`)
	cfg := config{
		Agent: agent, True: "/bin/true", HeartbeatDummy: agent,
		PacemakerDummy: filepath.Join(dir, "missing"),
		Rounds:         5, Warmup: 1, Max: time.Minute, Seed: 1,
	}
	res, err := bench(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rounds != 5 || len(res.Stats) != 3*len(actions) {
		t.Errorf("rounds %d, stats %d; want 5 and %d", res.Rounds, len(res.Stats), 3*len(actions))
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Name != namePacemaker {
		t.Errorf("skipped = %+v, want only %s", res.Skipped, namePacemaker)
	}
	for _, s := range res.Stats {
		if s.Calls != 5 || !(s.MedianMs > 0) || s.P90Ms < s.MedianMs {
			t.Errorf("implausible %+v", s)
		}
		if res.RSSNote == "" && (s.PeakRSSKiB == nil || *s.PeakRSSKiB <= 0) {
			t.Errorf("%s %s: no peak RSS and no note saying why", s.Candidate, s.Action)
		}
	}
	var table, doc bytes.Buffer
	if err := writeTable(&table, res); err != nil || !strings.Contains(table.String(), "goals met: ") {
		t.Errorf("writeTable: %v\n%s", err, table.String())
	}
	if err := writeJSON(&doc, res); err != nil || !json.Valid(doc.Bytes()) {
		t.Errorf("writeJSON: %v\n%s", err, doc.String())
	}
}

func TestBenchRefusesWrongExitCode(t *testing.T) {
	dir := t.TempDir()
	// Answers monitor with 0, as a broken agent would: fast, and wrong.
	broken := script(t, dir, "broken", `echo 'ocf-exit-reason:state file unreadable' >&2; exit 0`)
	tests := []struct {
		name  string
		agent string
		want  []string
	}{
		{"monitor answers 0", broken, []string{
			"exit code 0 (OCF_SUCCESS), want 7 (OCF_NOT_RUNNING)",
			"state file unreadable", // the agent's stderr, from a rerun
		}},
		{"agent missing", filepath.Join(dir, "nope"), []string{"not installed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config{Agent: tt.agent, True: "/bin/true", Rounds: 2, Max: time.Minute}
			_, err := bench(context.Background(), cfg, io.Discard)
			if err == nil {
				t.Fatal("bench succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("bench error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}
