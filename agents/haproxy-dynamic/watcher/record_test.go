package watcher

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestRecordNonePassing follows one service through a failover: its only
// instance stops passing, then a new one passes elsewhere.
func TestRecordNonePassing(t *testing.T) {
	old, moved := addrs("10.0.0.2:80"), addrs("10.0.0.3:80")
	steps := []struct {
		passing  []netip.AddrPort
		keepWant []netip.AddrPort // routed with KeepLast
		keepKept []string
		dropWant []netip.AddrPort // routed without
	}{
		{passing: old, keepWant: old, dropWant: old},
		{passing: nil, keepWant: old, keepKept: []string{"10.0.0.2:80"}, dropWant: nil},
		{passing: nil, keepWant: old, keepKept: []string{"10.0.0.2:80"}, dropWant: nil},
		{passing: moved, keepWant: moved, dropWant: moved},
	}
	for _, keep := range []bool{true, false} {
		w := newWatcher(&Config{KeepLast: keep}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		var firstKept time.Time
		for i, st := range steps {
			time.Sleep(time.Millisecond) // each step at a time of its own
			w.record(update{service: "web", index: uint64(i + 1), instances: st.passing})
			want, kept := st.dropWant, []string(nil)
			if keep {
				want, kept = st.keepWant, st.keepKept
			}
			if diff := cmp.Diff(want, w.want["web"], cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("keep=%v step %d: routed instances (-want +got):\n%s", keep, i, diff)
			}
			if diff := cmp.Diff(kept, w.status.Routes["web"].Kept, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("keep=%v step %d: status kept (-want +got):\n%s", keep, i, diff)
			}
			// Kept since the first step that kept, unchanged after.
			since := w.status.Routes["web"].KeptSince
			switch {
			case len(kept) == 0 && !since.IsZero():
				t.Errorf("keep=%v step %d: kept since %v, want zero while nothing is kept", keep, i, since)
			case len(kept) > 0 && since.IsZero():
				t.Errorf("keep=%v step %d: nothing kept since, want the time keeping began", keep, i)
			case len(kept) > 0 && !firstKept.IsZero() && !since.Equal(firstKept):
				t.Errorf("keep=%v step %d: kept since %v, want %v (when keeping began)", keep, i, since, firstKept)
			case len(kept) > 0:
				firstKept = since
			}
			if got := len(w.status.Routes["web"].Instances); got != len(st.passing) {
				t.Errorf("keep=%v step %d: status reports %d passing instances, want %d", keep, i, got, len(st.passing))
			}
		}
	}
}

// A watcher that never saw an instance has nothing to keep.
func TestRecordNothingToKeep(t *testing.T) {
	w := newWatcher(&Config{KeepLast: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.record(update{service: "web", index: 1})
	if got, known := w.want["web"]; !known || len(got) != 0 {
		t.Errorf("want[web] = %v (known %v), want known and empty", got, known)
	}
	if k := w.status.Routes["web"].Kept; len(k) != 0 {
		t.Errorf("kept %v, want none", k)
	}
}
