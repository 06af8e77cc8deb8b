package process

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		existing string // "" for no file before the write
		data     string
		perm     os.FileMode
	}{
		{name: "new file", data: "1234\n", perm: 0o644},
		{name: "secret", data: "token", perm: 0o600},
		{name: "group readable", data: "token", perm: 0o640},
		{name: "umask not applied", data: "x", perm: 0o666},
		{name: "replaces content and mode", existing: "old, longer content\n", data: "new\n", perm: 0o600},
		{name: "empty data", existing: "old", data: "", perm: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "haproxy.cfg")
			if tt.existing != "" {
				if err := os.WriteFile(path, []byte(tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFileAtomic(path, []byte(tt.data), tt.perm); err != nil {
				t.Fatalf("WriteFileAtomic() = %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.data, string(got)); diff != "" {
				t.Errorf("content mismatch (-want +got):\n%s", diff)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.perm {
				t.Errorf("mode = %v, want %v", fi.Mode().Perm(), tt.perm)
			}
			assertOnlyFiles(t, dir, "haproxy.cfg")
		})
	}
}

func TestWriteFileAtomicErrors(t *testing.T) {
	t.Parallel()
	t.Run("missing directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("WriteFileAtomic() = %v, want ErrNotExist", err)
		}
	})
	t.Run("rename fails, no temporary file left", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		// rename(2) cannot replace a non-empty directory with a file.
		target := filepath.Join(dir, "target")
		if err := os.MkdirAll(filepath.Join(target, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteFileAtomic(target, []byte("x"), 0o644); err == nil {
			t.Fatal("WriteFileAtomic() over a directory succeeded")
		}
		assertOnlyFiles(t, dir, "target")
	})
}

// assertOnlyFiles fails the test unless dir holds exactly the named
// entries: a leftover temporary file is a leak in a state directory.
func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("files in %s mismatch (-want +got):\n%s", dir, diff)
	}
}
