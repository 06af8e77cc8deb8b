package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces the file at path with data, so that readers
// (and the file after a crash or power loss) see either the old contents
// or the new, never a truncated mix. It writes a temporary file in the
// same directory (rename is only atomic within one file system), fsyncs
// it, sets perm, renames it over path and fsyncs the directory so the
// rename itself is durable.
//
// perm is applied exactly, regardless of the umask; until the rename the
// temporary file is readable by its owner only, so secrets written with
// perm 0600 or 0640 are never exposed. The new file belongs to the
// calling user, whatever the ownership of the file it replaces. If path
// is a symbolic link, the link itself is replaced, not its target.
//
// Return values:
//   - nil: path holds data with mode perm, durably.
//   - an error wrapping the cause: the directory does not exist or is not
//     writable, a write or fsync failed, or the rename failed. path is
//     then unchanged and no temporary file is left behind, except if
//     only the final directory fsync failed: the rename has then happened
//     but may not survive a crash.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// The leading dot hides the temporary file from globs such as
	// "*.conf" that a daemon may use to load a configuration directory.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s atomically: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			// Close may already have happened; its error is irrelevant
			// next to the one being returned.
			_ = f.Close()
			_ = os.Remove(tmp)
			err = fmt.Errorf("write %s atomically: %w", path, err)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	// Chmod rather than relying on the create mode, which the umask
	// would narrow, and on the file rather than the name, so no other
	// file can be swapped in.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	// Without this fsync a crash after the rename can leave an empty
	// file under the final name on ext4 and xfs.
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		// The temporary name is gone already; only report.
		return fmt.Errorf("write %s atomically: renamed but %w", path, err)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename into it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return errors.Join(d.Sync(), d.Close())
}
