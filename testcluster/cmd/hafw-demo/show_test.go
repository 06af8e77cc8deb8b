package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/testcluster/stackclient"
)

func TestFailures(t *testing.T) {
	fault := time.Unix(1000, 0)
	at := func(ms int) time.Time { return fault.Add(time.Duration(ms) * time.Millisecond) }
	ss := []stackclient.Sample{
		{Start: at(-300), End: at(-290), Status: 200, Who: "n2"},
		{Start: at(1250), End: at(12470), Status: 503},
		{Start: at(12570), End: at(12580), Err: "connection refused"},
		{Start: at(12700), End: at(12710), Status: 200, Who: "n3"},
		{Start: at(13000), End: at(13010), Status: 502},
	}
	got := failures(ss, fault, 2)
	want := []string{
		"failed: the request sent at +1.25s, status 503 after 11.22s",
		"failed: the request sent at +12.57s, no answer: connection refused after 10ms",
		"and 1 more failed",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if got := failures(ss[:1], fault, 2); len(got) != 0 {
		t.Errorf("failures of served requests: %q, want none", got)
	}
}

func TestQuote(t *testing.T) {
	got := quote([]string{"crm", "script", "run", "consul:servers=n1 n2", "a={{ x `y` }}", "it's", ""})
	want := "crm script run 'consul:servers=n1 n2' 'a={{ x `y` }}' 'it'\\''s' ''"
	if got != want {
		t.Errorf("quote = %s, want %s", got, want)
	}
}
