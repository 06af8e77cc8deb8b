package process

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestReadPIDFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pid")
	writeFile(t, good, "4242\n")
	garbage := filepath.Join(dir, "garbage.pid")
	writeFile(t, garbage, "not a pid\n")
	empty := filepath.Join(dir, "empty.pid")
	writeFile(t, empty, "")

	tests := []struct {
		name    string
		path    string
		want    int
		wantIs  error // nil: no error expected
		wantAny bool  // an error not matching a sentinel
	}{
		{name: "pid", path: good, want: 4242},
		{name: "missing", path: filepath.Join(dir, "missing.pid"), wantIs: fs.ErrNotExist},
		{name: "garbage", path: garbage, wantIs: ErrInvalidPIDFile},
		{name: "empty", path: empty, wantIs: ErrInvalidPIDFile},
		{name: "directory", path: dir, wantAny: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadPIDFile(tt.path)
			switch {
			case tt.wantIs != nil && !errors.Is(err, tt.wantIs):
				t.Fatalf("ReadPIDFile(%s) error = %v, want errors.Is %v", tt.name, err, tt.wantIs)
			case tt.wantAny && (err == nil || errors.Is(err, ErrInvalidPIDFile) || errors.Is(err, fs.ErrNotExist)):
				t.Fatalf("ReadPIDFile(%s) error = %v, want a read error", tt.name, err)
			case tt.wantIs == nil && !tt.wantAny && err != nil:
				t.Fatalf("ReadPIDFile(%s): %v", tt.name, err)
			}
			if got != tt.want {
				t.Errorf("ReadPIDFile(%s) = %d, want %d", tt.name, got, tt.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	// pidFileFor returns a pid file naming the pid that setup returns.
	pidFileFor := func(setup func(t *testing.T) int) func(t *testing.T) (string, int) {
		return func(t *testing.T) (string, int) {
			pid := setup(t)
			path := filepath.Join(t.TempDir(), "d.pid")
			writeFile(t, path, strconv.Itoa(pid)+"\n")
			return path, pid
		}
	}
	self := func(*testing.T) int { return os.Getpid() }
	tests := []struct {
		name      string
		setup     func(t *testing.T) (pidfile string, pid int)
		match     Matcher
		wantState State
		wantPID   bool // the pid from setup is returned
		wantErr   bool
	}{
		{
			name:      "no pid file",
			setup:     func(t *testing.T) (string, int) { return filepath.Join(t.TempDir(), "none.pid"), 0 },
			wantState: Stopped,
		},
		{
			name:      "running, no matcher",
			setup:     pidFileFor(startSleep),
			wantState: Running, wantPID: true,
		},
		{
			name:      "running, exe behind a symlink",
			setup:     pidFileFor(startSleep),
			match:     MatchExecutable("/bin/sleep"),
			wantState: Running, wantPID: true,
		},
		{
			name:      "running, cmdline",
			setup:     pidFileFor(startSleep),
			match:     MatchCmdline(func(argv []string) bool { return len(argv) == 2 && argv[1] == "30" }),
			wantState: Running, wantPID: true,
		},
		{
			name:      "pid reused by another executable",
			setup:     pidFileFor(startSleep),
			match:     MatchExecutable("/usr/sbin/haproxy"),
			wantState: Stale, wantPID: true,
		},
		{
			name:      "pid reused by the agent itself",
			setup:     pidFileFor(self),
			match:     MatchExecutable("/bin/sleep"),
			wantState: Stale, wantPID: true,
		},
		{
			name:      "pid reused, cmdline rejects",
			setup:     pidFileFor(startSleep),
			match:     MatchCmdline(func(argv []string) bool { return argv[0] == "/usr/sbin/nginx" }),
			wantState: Stale, wantPID: true,
		},
		{
			name:      "dead pid",
			setup:     pidFileFor(deadPID),
			match:     MatchExecutable("/bin/sleep"),
			wantState: Stale, wantPID: true,
		},
		{
			name:      "zombie",
			setup:     pidFileFor(zombiePID),
			match:     MatchExecutable("/bin/sleep"),
			wantState: Stale, wantPID: true,
		},
		{
			name: "garbage pid file",
			setup: func(t *testing.T) (string, int) {
				path := filepath.Join(t.TempDir(), "d.pid")
				writeFile(t, path, "garbage")
				return path, 0
			},
			wantState: Stale,
		},
		{
			name: "pid file of zero is not our process group",
			setup: func(t *testing.T) (string, int) {
				path := filepath.Join(t.TempDir(), "d.pid")
				writeFile(t, path, "0\n")
				return path, 0
			},
			wantState: Stale,
		},
		{
			name:      "unreadable pid file",
			setup:     func(t *testing.T) (string, int) { return t.TempDir(), 0 },
			wantState: Unknown, wantErr: true,
		},
		{
			name:      "matcher fails",
			setup:     pidFileFor(startSleep),
			match:     func(int) (bool, error) { return false, errors.New("boom") },
			wantState: Unknown, wantPID: true, wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pidfile, pid := tt.setup(t)
			state, gotPID, err := Status(pidfile, tt.match)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Status() error = %v, want error: %t", err, tt.wantErr)
			}
			if state != tt.wantState {
				t.Errorf("Status() state = %v, want %v", state, tt.wantState)
			}
			wantPID := 0
			if tt.wantPID {
				wantPID = pid
			}
			if gotPID != wantPID {
				t.Errorf("Status() pid = %d, want %d", gotPID, wantPID)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Unknown: "unknown", Stopped: "stopped", Running: "running", Stale: "stale", 9: "State(9)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

// A process inside execve shows no arguments for a moment; HAProxy's
// master re-executes itself after starting and at every reload. A daemon
// that re-executes itself must never look stale to Status in between.
func TestStatusThroughReexec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "reexec.sh")
	// Executes itself again $1 times, then sleeps; the marker argument
	// is what the Matcher looks for.
	writeFile(t, script, "#!/bin/sh\n[ \"$1\" -gt 0 ] && exec \"$0\" $(($1 - 1)) marker\nexec /bin/sleep 30\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	const execs = 400
	pid := startDaemon(t, Daemon{Path: script, Args: []string{strconv.Itoa(execs), "marker"}})
	pidFile := filepath.Join(dir, "d.pid")
	writeFile(t, pidFile, strconv.Itoa(pid)+"\n")
	match := MatchCmdline(func(argv []string) bool {
		return len(argv) >= 2 && (argv[len(argv)-1] == "marker" || argv[0] == "/bin/sleep")
	})
	// Bounded by count and time; ends once the chain reached sleep.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 200000 && time.Now().Before(deadline); i++ {
		st, _, err := Status(pidFile, match)
		if err != nil || st != Running {
			t.Fatalf("check %d: Status = %v, %v while the daemon re-executes itself; want running", i, st, err)
		}
		if argv, _ := readCmdline(pid); len(argv) > 0 && argv[0] == "/bin/sleep" {
			return
		}
	}
	t.Fatalf("the daemon did not reach its last exec in time")
}
