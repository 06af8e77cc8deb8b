package ocf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{name: "relative", path: "token", code: ErrConfigured, reason: "must be an absolute path"},
		{name: "missing", path: filepath.Join(dir, "nope"), code: ErrArgs, reason: "does not exist on this node"},
		{name: "group readable", path: write("open", "hunter2", 0o640), code: ErrArgs, reason: "run chmod 600"},
		{name: "world readable", path: write("world", "hunter2", 0o644), code: ErrArgs, reason: "mode 0644)"},
		{name: "empty", path: write("empty", "  \n", 0o600), code: ErrArgs, reason: "is empty"},
		{name: "directory", path: dir, code: ErrArgs, reason: "is not a regular file"},
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
