package process

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseStartTime(t *testing.T) {
	// A comm with spaces and a parenthesis, as a process may name itself.
	stat := "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615"
	got, err := parseStartTime([]byte(stat))
	if err != nil || got != 987654 {
		t.Errorf("parseStartTime = %d, %v; want 987654", got, err)
	}
	if _, err := parseStartTime([]byte("42 (x) S 1 2")); err == nil {
		t.Error("short stat accepted")
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	id, err := Identify(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseIdentity(id.String() + "\n")
	if err != nil || back != id {
		t.Errorf("ParseIdentity(%q) = %+v, %v; want %+v", id.String(), back, err, id)
	}
	for _, bad := range []string{"", "1 2", "x 2 b", "1 y b", "0 2 b", "1 2 b c"} {
		if _, err := ParseIdentity(bad); err == nil {
			t.Errorf("ParseIdentity(%q) accepted", bad)
		}
	}
}

// StartDaemon records the identity; Status then finds the daemon by it,
// even when the Matcher would reject it (its binary was removed or
// replaced), and calls a pid held by another process stale.
func TestStatusByIdentity(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "d.pid")
	pid := startDaemon(t, Daemon{Path: "/bin/sleep", Args: []string{"30"}, PIDFile: pidfile})
	id, ok := ReadIdentity(pidfile, pid)
	if !ok || id.PID != pid {
		t.Fatalf("ReadIdentity = %+v, %v; want the daemon's", id, ok)
	}
	reject := func(int) (bool, error) { return false, nil }
	if st, got, err := Status(pidfile, reject); st != Running || got != pid || err != nil {
		t.Errorf("Status with a recorded identity = %v, %d, %v; want running %d", st, got, err, pid)
	}
	// Another process now holds the pid: same pid, another start time.
	id.Start++
	if err := WriteFileAtomic(pidfile+IdentityFileSuffix, []byte(id.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	accept := func(int) (bool, error) { return true, nil }
	if st, _, err := Status(pidfile, accept); st != Stale || err != nil {
		t.Errorf("Status of a pid with another identity = %v, %v; want stale", st, err)
	}
	// An identity about another pid (left by an earlier daemon) is
	// ignored: the Matcher decides.
	other := Identity{PID: pid + 1, Start: 1, Boot: id.Boot}
	if err := WriteFileAtomic(pidfile+IdentityFileSuffix, []byte(other.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := Status(pidfile, reject); st != Stale {
		t.Errorf("Status with a foreign identity file and a rejecting Matcher = %v, want stale", st)
	}
	if st, _, _ := Status(pidfile, accept); st != Running {
		t.Errorf("Status with a foreign identity file and an accepting Matcher = %v, want running", st)
	}
}
