package process

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode()
}

func TestOpenStateDir(t *testing.T) {
	base := t.TempDir()
	mkdir := func(name string, perm os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, perm); err != nil {
			t.Fatal(err)
		}
		return p
	}
	victimDir := mkdir("victim", 0o755)
	link := filepath.Join(base, "link")
	if err := os.Symlink(victimDir, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := mkdir("foreign", 0o700)
	if os.Geteuid() == 0 {
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		path     string
		unsafe   string // "" for accepted
		rootOnly bool
	}{
		{name: "missing, with a missing parent", path: filepath.Join(base, "a", "b")},
		{name: "0755 repaired", path: mkdir("open", 0o755)},
		{name: "sticky 1755 repaired", path: mkdir("sticky", 0o755|os.ModeSticky)},
		{name: "world writable", path: mkdir("planted", 0o777), unsafe: "then remove it or chmod 700 it (mode 0777: group or others may write)"},
		{name: "world writable and sticky", path: mkdir("tmp", 0o777|os.ModeSticky), unsafe: "(mode 1777:"},
		{name: "group writable", path: mkdir("group", 0o770), unsafe: "(mode 0770:"},
		{name: "symbolic link", path: link, unsafe: "(it is a symbolic link)"},
		{name: "a file", path: file, unsafe: "(it is not a directory)"},
		{name: "owned by another user", path: foreign, unsafe: "(owned by uid 65534)", rootOnly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rootOnly && os.Geteuid() != 0 {
				t.Skip("needs root to give the directory to another user")
			}
			before, _ := os.Lstat(tt.path)
			d, err := OpenStateDir(tt.path)
			if tt.unsafe == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				if got := mode(t, tt.path); got != os.ModeDir|0o700 {
					t.Errorf("mode %v, want drwx------", got)
				}
				return
			}
			if !errors.Is(err, ErrUnsafeStateDir) || !strings.Contains(err.Error(), tt.unsafe) {
				t.Fatalf("got %v, want ErrUnsafeStateDir with %q", err, tt.unsafe)
			}
			if after, _ := os.Lstat(tt.path); before.Mode() != after.Mode() {
				t.Errorf("an unsafe directory was changed: %v -> %v", before.Mode(), after.Mode())
			}
		})
	}
	if got := mode(t, victimDir); got != os.ModeDir|0o755 {
		t.Errorf("the target of the link was changed to %v", got)
	}
	if err := EnsureStateDir(filepath.Join(base, "ensured")); err != nil {
		t.Fatal(err)
	}
}

// TestStateDirFiles: files planted in a state directory (a symbolic link
// to a victim, a FIFO) are refused, never written through or waited on.
func TestStateDirFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	d, err := OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "watcher.log")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, flag := range []int{os.O_WRONLY | os.O_APPEND | os.O_CREATE, os.O_RDONLY} {
			if f, err := d.OpenFile("watcher.log", flag, 0o600); !errors.Is(err, ErrUnsafeStateDir) || !strings.Contains(err.Error(), "(a symbolic link)") {
				t.Errorf("OpenFile(link, %#x) = %v, %v; want ErrUnsafeStateDir", flag, f, err)
			}
			if f, err := d.OpenFile("fifo", flag, 0o600); !errors.Is(err, ErrUnsafeStateDir) || !strings.Contains(err.Error(), "(not a regular file)") {
				t.Errorf("OpenFile(fifo, %#x) = %v, %v; want ErrUnsafeStateDir", flag, f, err)
			}
		}
		if _, err := d.ReadFile("fifo", 100); !errors.Is(err, ErrUnsafeStateDir) {
			t.Errorf("ReadFile(fifo) = %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("opening a planted FIFO blocked")
	}
	if data, _ := os.ReadFile(victim); string(data) != "precious\n" {
		t.Errorf("the victim was changed: %q", data)
	}

	for _, name := range []string{"", ".", "..", "../x", "a/b"} {
		if _, err := d.OpenFile(name, os.O_RDONLY, 0); err == nil || !strings.Contains(err.Error(), "is not a file name") {
			t.Errorf("OpenFile(%q) = %v", name, err)
		}
	}
	if _, err := d.ReadFile("missing", 100); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want fs.ErrNotExist", err)
	}

	// WriteFileAtomic replaces the planted link, not its target.
	if err := d.WriteFileAtomic("watcher.log", []byte("mine"), 0o640); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "precious\n" {
		t.Errorf("WriteFileAtomic wrote through the link: %q", data)
	}
	if got := mode(t, filepath.Join(dir, "watcher.log")); got != 0o640 {
		t.Errorf("mode %v, want -rw-r-----", got)
	}
	data, err := d.ReadFile("watcher.log", 4)
	if err != nil || string(data) != "mine" {
		t.Errorf("ReadFile = %q, %v", data, err)
	}
	if _, err := d.ReadFile("watcher.log", 3); err == nil || !strings.Contains(err.Error(), "larger than 3 bytes") {
		t.Errorf("ReadFile over the bound = %v", err)
	}
	f, err := d.OpenFile("new", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := mode(t, filepath.Join(dir, "new")); got != 0o600 {
		t.Errorf("new file mode %v", got)
	}
	for _, name := range []string{"new", "new", "fifo"} {
		if err := d.Remove(name); err != nil {
			t.Errorf("Remove(%s) = %v", name, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != "watcher.log" {
		t.Errorf("left in the directory: %v", left)
	}
}
