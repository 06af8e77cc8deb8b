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

// ReadSecretFile reads a secret (an ACL token, a key) from the file named
// by parameter param. Secrets never travel as parameter values, which
// Pacemaker keeps in the CIB and passes in the environment; only the file's
// path does. The content is returned with surrounding white space removed
// and is never logged.
//
// Errors, all *Error naming param and the fix:
//   - ErrConfigured: path is not absolute (the same on every node);
//   - ErrArgs: missing, unreadable by this process, not a regular file,
//     empty, owned by another user, or readable or writable by group or
//     others (mode wider than 0600). All are this node's problem, so a
//     probe reads them as "not running" rather than banning the resource.
func ReadSecretFile(path, param string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", Errorf(ErrConfigured, "parameter %s=%q must be an absolute path", param, path)
	}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", &Error{Code: ErrArgs, Reason: fmt.Sprintf("%s file %s does not exist on this node; create it with mode 0600", param, path), Err: err}
	case errors.Is(err, fs.ErrPermission):
		return "", &Error{Code: ErrArgs, Reason: fmt.Sprintf("%s file %s is not readable by the agent; run the agent as root or fix its owner", param, path), Err: err}
	case err != nil:
		return "", &Error{Code: ErrArgs, Reason: fmt.Sprintf("%s file %s: %v", param, path, err), Err: err}
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", &Error{Code: ErrArgs, Reason: fmt.Sprintf("%s file %s: %v", param, path, err), Err: err}
	}
	if !info.Mode().IsRegular() {
		return "", Errorf(ErrArgs, "%s file %s is not a regular file", param, path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return "", Errorf(ErrArgs, "%s: run chmod 600 %s (group or others may read it, mode %04o)", param, path, perm)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return "", Errorf(ErrArgs, "%s: run chown root %s (owned by uid %d, not root)", param, path, st.Uid)
	}
	buf := make([]byte, 64<<10)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		if errors.Is(err, io.EOF) {
			return "", Errorf(ErrArgs, "%s file %s is empty", param, path)
		}
		return "", &Error{Code: ErrArgs, Reason: fmt.Sprintf("reading %s file %s: %v", param, path, err), Err: err}
	}
	secret := strings.TrimSpace(string(buf[:n]))
	if secret == "" {
		return "", Errorf(ErrArgs, "%s file %s is empty", param, path)
	}
	return secret, nil
}
