package process

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// StateDir is an open state directory that only the agent's user can
// change: agents run as root, so a directory that someone else can write
// to lets them plant a symbolic link (watcher.log -> /etc/shadow) that
// root then writes through. Files inside are opened relative to the open
// directory and never through a symbolic link.
type StateDir struct {
	f    *os.File
	path string
}

// ErrUnsafeStateDir is wrapped by the errors of OpenStateDir when the
// directory exists but cannot be trusted: it belongs to another user,
// others can write to it, or it is not a directory. Nothing is repaired
// then; an administrator must look at what is inside.
var ErrUnsafeStateDir = errors.New("unsafe state directory")

// OpenStateDir creates the directory at path with mode 0700, or checks
// and repairs an existing one, and opens it. Missing parents are created
// with mode 0755. The directory itself must not be a symbolic link
// (leading components may be, as /var/run -> /run). An existing
// directory owned by the calling user (root for an agent) and writable by
// nobody else gets mode 0700, which also drops a sticky, setuid or setgid
// bit and read access for others.
//
// Return values:
//   - (dir, nil): an open directory owned by the calling user with mode
//     0700; Close it when done.
//   - (nil, err) with errors.Is(err, ErrUnsafeStateDir): path exists but
//     is a symbolic link or not a directory, is owned by another user, or
//     is writable by group or others. The message says what to fix.
//   - (nil, err): the directory or a parent could not be created, opened
//     or repaired (read-only file system, permission denied...).
func OpenStateDir(path string) (*StateDir, error) {
	path = filepath.Clean(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", path, err)
	}
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("state directory %s: %w", path, err)
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR):
		// With O_DIRECTORY, a link fails with either, depending on
		// where it leads.
		what := "is not a directory"
		if info, lerr := os.Lstat(path); lerr == nil && info.Mode()&fs.ModeSymlink != 0 {
			what = "is a symbolic link"
		}
		return nil, fmt.Errorf("remove %s, the agent creates the directory (it %s): %w", path, what, ErrUnsafeStateDir)
	case err != nil:
		return nil, fmt.Errorf("state directory %s: %w", path, err)
	}
	d := &StateDir{f: os.NewFile(uintptr(fd), path), path: path}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		d.Close()
		return nil, fmt.Errorf("state directory %s: %w", path, err)
	}
	perm := st.Mode & 0o7777
	switch {
	case int(st.Uid) != os.Geteuid():
		d.Close()
		return nil, fmt.Errorf("check what is in %s, then remove it or chown it to uid %d (owned by uid %d): %w",
			path, os.Geteuid(), st.Uid, ErrUnsafeStateDir)
	case perm&0o022 != 0:
		d.Close()
		return nil, fmt.Errorf("check what is in %s, then remove it or chmod 700 it (mode %04o: group or others may write): %w",
			path, perm, ErrUnsafeStateDir)
	case perm != 0o700:
		// On the descriptor, not the name: the directory checked is the
		// one repaired.
		if err := d.f.Chmod(0o700); err != nil {
			d.Close()
			return nil, fmt.Errorf("state directory %s: %w", path, err)
		}
	}
	return d, nil
}

// EnsureStateDir is OpenStateDir for callers that only need the
// directory to exist and be safe, such as before taking a lock file in
// it. Its return values are those of OpenStateDir, without the directory.
func EnsureStateDir(path string) error {
	d, err := OpenStateDir(path)
	if err != nil {
		return err
	}
	return d.Close()
}

// Path returns the directory's path.
func (d *StateDir) Path() string { return d.path }

// Close closes the directory. Files opened in it stay open.
func (d *StateDir) Close() error { return d.f.Close() }

// checkName keeps names inside the directory: one path component.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("%q is not a file name inside a state directory", name)
	}
	return nil
}

// OpenFile opens the file name (one path component, no slashes) inside
// the directory with os.OpenFile's flag and perm, but never follows a
// symbolic link and never opens anything but a regular file: the open is
// non-blocking, so a FIFO in its place does not hang the agent, and its
// type is checked on the open descriptor. With os.O_CREATE the file ends
// up with mode perm exactly, whatever the umask and whether it is new.
//
// Return values:
//   - (f, nil): an open regular file; the caller closes it.
//   - (nil, err) with errors.Is(err, fs.ErrNotExist): name does not exist
//     and flag has no os.O_CREATE.
//   - (nil, err) with errors.Is(err, ErrUnsafeStateDir): name is a
//     symbolic link, not a regular file, or owned by another user.
//   - (nil, err): name is not a single component, or the open failed
//     for another reason (permission, os.O_EXCL and the file exists...).
func (d *StateDir) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	full := filepath.Join(d.path, name)
	fd, err := syscall.Openat(int(d.f.Fd()), name, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, uint32(perm.Perm()))
	switch {
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("remove %s (a symbolic link): %w", full, ErrUnsafeStateDir)
	case errors.Is(err, syscall.ENXIO):
		// A FIFO without a reader, opened for writing.
		return nil, fmt.Errorf("remove %s (not a regular file): %w", full, ErrUnsafeStateDir)
	case err != nil:
		return nil, &fs.PathError{Op: "open", Path: full, Err: err}
	}
	f := os.NewFile(uintptr(fd), full)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "stat", Path: full, Err: err}
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		f.Close()
		return nil, fmt.Errorf("remove %s (not a regular file): %w", full, ErrUnsafeStateDir)
	case int(st.Uid) != os.Geteuid():
		f.Close()
		return nil, fmt.Errorf("remove %s (owned by uid %d): %w", full, st.Uid, ErrUnsafeStateDir)
	}
	if flag&os.O_CREATE != 0 && st.Mode&0o7777 != uint32(perm.Perm()) {
		// The umask narrowed a new file's mode, or an old file has
		// another one.
		if err := f.Chmod(perm.Perm()); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// ReadFile reads the file name inside the directory, as OpenFile opens
// it, refusing more than max bytes.
//
// Return values:
//   - (data, nil): the whole file.
//   - (nil, err): OpenFile's errors (fs.ErrNotExist for a missing file,
//     ErrUnsafeStateDir for a link or a special file), a read error, or
//     a file larger than max.
func (d *StateDir) ReadFile(name string, max int64) ([]byte, error) {
	f, err := d.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", f.Name(), max)
	}
	return data, nil
}

// WriteFileAtomic replaces the file name inside the directory with data,
// as the package's WriteFileAtomic does for a path: a temporary file
// created exclusively (never through a link), fsynced, given perm,
// renamed over name, and the directory fsynced. A symbolic link at name
// is replaced, never followed.
//
// Return values:
//   - nil: name holds data with mode perm, durably.
//   - an error: name is not a single component, or a step failed; name
//     is then unchanged and the temporary file removed, except if only
//     the final directory fsync failed (the rename happened but may not
//     survive a crash).
func (d *StateDir) WriteFileAtomic(name string, data []byte, perm os.FileMode) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := "." + name + ".tmp-" + hex.EncodeToString(rnd[:])
	f, err := d.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s atomically: %w", filepath.Join(d.path, name), err)
	}
	dirfd := int(d.f.Fd())
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = syscall.Unlinkat(dirfd, tmp)
			err = fmt.Errorf("write %s atomically: %w", filepath.Join(d.path, name), err)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := syscall.Renameat(dirfd, tmp, dirfd, name); err != nil {
		return err
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("write %s atomically: renamed but sync directory: %w", filepath.Join(d.path, name), err)
	}
	return nil
}

// Remove removes the file name inside the directory (a symbolic link
// itself, never its target).
//
// Return values:
//   - nil: name is gone, or was never there.
//   - an error: name is not a single component, or unlinkat(2) failed
//     (name is a directory, permission...).
func (d *StateDir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := syscall.Unlinkat(int(d.f.Fd()), name); err != nil && !errors.Is(err, syscall.ENOENT) {
		return &fs.PathError{Op: "remove", Path: filepath.Join(d.path, name), Err: err}
	}
	return nil
}
