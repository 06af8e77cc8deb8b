package ocf

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name     string
		path     string
		want     string
		code     Code
		reason   string
		rootOnly bool
	}{
		{name: "good", path: write("good", " s3cret\n", 0o600), want: "s3cret"},
		{name: "read only", path: write("ro", "hunter2", 0o400), want: "hunter2"},
		{name: "relative", path: "token", code: Misconfigured, reason: "must be an absolute path"},
		{name: "missing", path: filepath.Join(dir, "nope"), code: InvalidArgs, reason: "does not exist on this node"},
		{name: "group readable", path: write("open", "hunter2", 0o640), code: InvalidArgs, reason: "run chmod 600"},
		{name: "world readable", path: write("world", "hunter2", 0o644), code: InvalidArgs, reason: "mode 0644)"},
		{name: "empty", path: write("empty", "  \n", 0o600), code: InvalidArgs, reason: "is empty"},
		{name: "directory", path: dir, code: InvalidArgs, reason: "point it at a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadSecretFile(tt.path, "token_file")
			if CodeOf(err) != tt.code || got != tt.want {
				t.Fatalf("ReadSecretFile = %q, %v (%v), want %q, %v", got, err, CodeOf(err), tt.want, tt.code)
			}
			if err != nil && (!strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), "token_file")) {
				t.Errorf("reason %q, want it to contain %q and the parameter", err, tt.reason)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") && !strings.Contains(err.Error(), "token_file") {
				t.Errorf("reason leaks the secret: %q", err)
			}
		})
	}
}

// TestReadParamFile checks the rules for files named by parameters; the
// FIFO and device rows would block forever if the file were opened
// before its type is known, or opened blocking.
func TestReadParamFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	linkToFifo := filepath.Join(dir, "link-to-fifo")
	if err := os.Symlink(fifo, linkToFifo); err != nil {
		t.Fatal(err)
	}
	good := write("good.json", `{"a": 1}`, 0o644)
	linkToGood := filepath.Join(dir, "link-to-good")
	if err := os.Symlink(good, linkToGood); err != nil {
		t.Fatal(err)
	}
	foreign := write("foreign.json", "{}", 0o644)
	if os.Geteuid() == 0 {
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		path     string
		rules    FileRules
		want     string
		reason   string // "" for accepted
		rootOnly bool
	}{
		{name: "plain", path: good, want: `{"a": 1}`},
		{name: "symbolic link to a file", path: linkToGood, rules: FileRules{Trusted: true}, want: `{"a": 1}`},
		{name: "FIFO", path: fifo, reason: "definition_file: point it at a regular file (" + fifo + " is a FIFO)"},
		{name: "symbolic link to a FIFO", path: linkToFifo, reason: "is a FIFO)"},
		{name: "character device", path: "/dev/zero", reason: "is a character device)"},
		{name: "terminal", path: "/dev/tty", reason: "point it at a regular file"},
		{name: "directory", path: dir, reason: "is a directory)"},
		{name: "too large", path: write("large", strings.Repeat("x", 101), 0o644), rules: FileRules{MaxSize: 100}, reason: "point it at the right file (" + filepath.Join(dir, "large") + " is larger than 100 bytes)"},
		{name: "at the limit", path: write("limit", strings.Repeat("x", 100), 0o644), rules: FileRules{MaxSize: 100}, want: strings.Repeat("x", 100)},
		{name: "group writable", path: write("gw", "{}", 0o664), rules: FileRules{Trusted: true}, reason: "definition_file: run chmod go-w " + filepath.Join(dir, "gw") + " (group or others may write it, mode 0664)"},
		{name: "world writable", path: write("ww", "{}", 0o666), rules: FileRules{Trusted: true}, reason: "mode 0666)"},
		{name: "world writable, no rules", path: write("ww2", "{}", 0o666), want: "{}"},
		{name: "world readable secret", path: write("wr", "{}", 0o644), rules: FileRules{Secret: true}, reason: "run chmod 600 " + filepath.Join(dir, "wr") + " (group or others may read it, mode 0644)"},
		{name: "owned by another user", path: foreign, rules: FileRules{Trusted: true}, reason: "run chown root " + foreign + " (owned by uid 65534, not root)", rootOnly: true},
		{name: "missing", path: filepath.Join(dir, "nope"), reason: "does not exist on this node; create it"},
		{name: "relative", path: "x.json", reason: "must be an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rootOnly && os.Geteuid() != 0 {
				t.Skip("needs root to give the file to another user")
			}
			type result struct {
				data []byte
				err  error
			}
			done := make(chan result, 1)
			go func() {
				data, err := ReadParamFile(tt.path, "definition_file", tt.rules)
				done <- result{data, err}
			}()
			var got result
			select {
			case got = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("ReadParamFile(%s) still blocked after 10s", tt.path)
			}
			if tt.reason == "" {
				if got.err != nil || string(got.data) != tt.want {
					t.Fatalf("got %q, %v; want %q", got.data, got.err, tt.want)
				}
				return
			}
			if got.err == nil || !strings.Contains(ReasonOf(got.err), tt.reason) || !strings.Contains(ReasonOf(got.err), "definition_file") {
				t.Fatalf("got %q, %v; want an error with %q naming definition_file", got.data, got.err, tt.reason)
			}
			if code := CodeOf(got.err); code != InvalidArgs && code != Misconfigured {
				t.Errorf("code %v, want InvalidArgs (this node) or Misconfigured (relative)", code)
			}
		})
	}
}

// TestReadSecretFileFIFO: a FIFO in place of a token file is refused at
// once, not waited on.
func TestReadSecretFileFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "token")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadSecretFile(fifo, "token_file"); done <- err }()
	select {
	case err := <-done:
		if CodeOf(err) != InvalidArgs || !strings.Contains(ReasonOf(err), "token_file: point it at a regular file ("+fifo+" is a FIFO)") {
			t.Fatalf("got %v %q", CodeOf(err), ReasonOf(err))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadSecretFile on a FIFO still blocked after 10s")
	}
}
