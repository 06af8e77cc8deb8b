// Package lua holds the gateway's Lua code (JWT verification, ACL
// evaluation, the state endpoint), embedded in the agent's binary so that
// the code nginx runs always matches the agent that rendered its
// configuration. Install writes it into the resource's state directory at
// every start and reload; nothing is installed under /usr.
package lua

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ha-framework/ha-framework/ocf/process"
)

//go:embed gateway/*.lua
var files embed.FS

// Install writes the modules under dir (dir/gateway/NAME.lua, for
// lua_package_path "dir/?.lua"), each atomically, readable by root only:
// the master loads them all before the workers fork.
//
// Return values: nil once every module is written; otherwise the first
// error creating the directory or writing a file.
func Install(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "gateway"), 0o700); err != nil {
		return err
	}
	return fs.WalkDir(files, "gateway", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		if err := process.WriteFileAtomic(filepath.Join(dir, path), data, 0o600); err != nil {
			return fmt.Errorf("writing Lua module %s: %w", path, err)
		}
		return nil
	})
}
