package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// ErrLockHeld is wrapped, with ctx's error, by Lock when ctx ended while
// another holder had the lock: contention, as opposed to a lock that
// could not be tried at all.
var ErrLockHeld = errors.New("lock held by another holder")

// lockPoll is how often Lock retries a held lock. flock(2) can only block
// without a timeout, so Lock polls a non-blocking attempt instead and can
// give up when the context ends.
const lockPoll = 50 * time.Millisecond

// Lock takes an exclusive flock(2) lock on the file at path, creating it
// with mode 0600 if needed, and waits until the lock is free or ctx is
// done. Agents use it to serialise actions of one resource that may run
// at the same time (for example a monitor during a reload, or clone
// instances sharing a configuration file).
//
// The lock belongs to the open file, so two calls in the same process
// exclude each other like two processes do, and the kernel releases it
// when the process dies, even by SIGKILL after an action timeout: no
// stale locks. The file is opened close-on-exec, so a daemon started
// while the lock is held does not inherit it and keep it forever.
//
// The file is never removed, because removing a lock file lets a waiter
// lock the deleted file while a newcomer locks a new one. Put it where
// the agent keeps its state (HA_RSCTMP, /run/resource-agents by default).
//
// Return values:
//   - (unlock, nil): the lock is held until unlock is called. unlock
//     releases it and closes the file; it may be called more than once
//     (for example deferred and also called early), later calls
//     returning the result of the first.
//   - (nil, err) with errors.Is(err, ErrLockHeld) and errors.Is(err,
//     ctx.Err()): ctx ended while another holder had the lock.
//   - (nil, err) with errors.Is(err, ctx.Err()) only: ctx had ended
//     before the lock was tried.
//   - (nil, err): the file could not be opened or created, or flock(2)
//     failed for another reason than contention.
func Lock(ctx context.Context, path string) (unlock func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// O_CLOEXEC is what os.OpenFile does anyway; it is spelled out because
	// the lock depends on it. O_NOFOLLOW: a symbolic link planted at path
	// must not make root create or lock another file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	conn, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	ticker := time.NewTicker(lockPoll)
	defer ticker.Stop()
	for {
		var ferr error
		cerr := conn.Control(func(fd uintptr) {
			ferr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
		})
		if cerr == nil && ferr == nil {
			return sync.OnceValue(f.Close), nil
		}
		if err := errors.Join(cerr, ferr); !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: flock: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w: %w", path, ErrLockHeld, ctx.Err())
		case <-ticker.C:
		}
	}
}
