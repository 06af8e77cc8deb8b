package ocf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// FileRules says what ReadParamFile accepts beyond "a regular file".
type FileRules struct {
	// MaxSize bounds the file's size in bytes; 0 means 1 MiB. A larger
	// file is refused, never read in part.
	MaxSize int64
	// Trusted requires the file to be owned by root (or by the agent's
	// own user) and not writable by group or others: its content steers
	// what the agent does as root, such as a check command or a
	// configuration, so it is code.
	Trusted bool
	// Secret is Trusted with no access at all for group or others (mode
	// 0600 or narrower): an ACL token, a private key.
	Secret bool
}

// defaultMaxSize is FileRules.MaxSize when unset: generous for a
// configuration or a definition, small enough to keep in memory.
const defaultMaxSize = 1 << 20

// ReadParamFile reads the small regular file named by parameter param,
// whole. The type of the file is checked before it is opened, and it is
// opened non-blocking and checked again on the open descriptor: a FIFO, a
// device or a socket in place of a file would otherwise block the read
// forever (and a stop with it, until Pacemaker fences the node), or read
// without end. path may be a symbolic link, as administrators link
// configuration files: the rules apply to the file it leads to, and the
// directories on the way must be as trustworthy as the file.
//
// Return values:
//   - (content, nil): the whole file, at most rules.MaxSize bytes.
//   - (nil, err) with Misconfigured: path is not absolute (the same on
//     every node).
//   - (nil, err) with InvalidArgs, a reason naming param, the path and the
//     fix: the file does not exist (errors.Is(err, fs.ErrNotExist), so
//     callers may say how to create it), is not readable by this
//     process, is not a regular file, is larger than MaxSize, or breaks
//     the ownership and mode rules. All are this node's problem, so a
//     probe reads them as "not running" rather than banning the
//     resource.
func ReadParamFile(path, param string, rules FileRules) ([]byte, error) {
	if !filepath.IsAbs(path) {
		return nil, Errorf(Misconfigured, "parameter %s=%q must be an absolute path", param, path)
	}
	limit := rules.MaxSize
	if limit <= 0 {
		limit = defaultMaxSize
	}
	create := "create it"
	if rules.Secret {
		create = "create it with mode 0600"
	}
	failed := func(err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return &Error{Code: InvalidArgs, Reason: fmt.Sprintf("%s file %s does not exist on this node; %s", param, path, create), Err: err}
		case errors.Is(err, fs.ErrPermission):
			return &Error{Code: InvalidArgs, Reason: fmt.Sprintf("%s file %s is not readable by the agent; run the agent as root or fix its owner", param, path), Err: err}
		}
		return &Error{Code: InvalidArgs, Reason: fmt.Sprintf("%s file %s: %v", param, path, err), Err: err}
	}
	// Stat first: opening a device can have effects of its own (a tape
	// rewinds, a terminal becomes the controlling one).
	info, err := os.Stat(path)
	if err != nil {
		return nil, failed(err)
	}
	if err := fileRules(info, path, param, rules, limit); err != nil {
		return nil, err
	}
	// O_NONBLOCK: the file may have been replaced by a FIFO since the
	// Stat, and opening a FIFO for reading blocks until a writer comes.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, failed(err)
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil {
		return nil, failed(err)
	}
	if err := fileRules(info, path, param, rules, limit); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &Error{Code: InvalidArgs, Reason: fmt.Sprintf("reading %s file %s: %v", param, path, err), Err: err}
	}
	if int64(len(data)) > limit {
		return nil, Errorf(InvalidArgs, "%s: point it at the right file (%s is larger than %d bytes)", param, path, limit)
	}
	return data, nil
}

// fileRules applies rules to what Stat found.
func fileRules(info fs.FileInfo, path, param string, rules FileRules, limit int64) error {
	if !info.Mode().IsRegular() {
		return Errorf(InvalidArgs, "%s: point it at a regular file (%s is %s)", param, path, fileType(info.Mode()))
	}
	if info.Size() > limit {
		return Errorf(InvalidArgs, "%s: point it at the right file (%s is larger than %d bytes)", param, path, limit)
	}
	perm := info.Mode().Perm()
	switch {
	case rules.Secret && perm&0o077 != 0:
		return Errorf(InvalidArgs, "%s: run chmod 600 %s (group or others may read it, mode %04o)", param, path, perm)
	case (rules.Trusted || rules.Secret) && perm&0o022 != 0:
		return Errorf(InvalidArgs, "%s: run chmod go-w %s (group or others may write it, mode %04o)", param, path, perm)
	}
	if rules.Trusted || rules.Secret {
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
			return Errorf(InvalidArgs, "%s: run chown root %s (owned by uid %d, not root)", param, path, st.Uid)
		}
	}
	return nil
}

// fileType names the kind of a file that is not a regular one.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "type " + m.Type().String()
}

// ReadSecretFile reads a secret (an ACL token, a key) from the file named
// by parameter param. Secrets never travel as parameter values, which
// Pacemaker keeps in the CIB and passes in the environment; only the file's
// path does. The file must follow FileRules{Secret: true} and hold at most
// 64 KiB. The content is returned with surrounding white space removed
// and is never logged.
//
// Return values:
//   - (secret, nil): the file's content without surrounding white space,
//     never empty.
//   - ("", err) with Misconfigured: path is not absolute (the same on
//     every node).
//   - ("", err) with InvalidArgs, a reason naming param and the fix: missing,
//     unreadable by this process, not a regular file (a FIFO is refused
//     without waiting), larger than 64 KiB, empty, owned by another user,
//     or readable or writable by group or others (mode wider than 0600).
//     All are this node's problem, so a probe reads them as "not running"
//     rather than banning the resource.
func ReadSecretFile(path, param string) (string, error) {
	data, err := ReadParamFile(path, param, FileRules{MaxSize: 64 << 10, Secret: true})
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", Errorf(InvalidArgs, "%s file %s is empty", param, path)
	}
	return secret, nil
}
