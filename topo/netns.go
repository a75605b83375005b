package topo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces are bind-mounted, as iproute2 does, so
// `ip netns list` and `ip netns exec` see ours.
const netnsDir = "/run/netns"

func nsPath(name string) string { return filepath.Join(netnsDir, name) }

// Do runs fn on a locked OS thread switched into namespace ns, then switches
// the thread back. If switching back fails the thread is left locked, so the
// Go runtime retires it with the goroutine instead of letting another
// goroutine run in the wrong namespace.
//
// Only code running on fn's own goroutine is inside ns: goroutines fn starts
// run on other threads in the original namespace. Sockets fn opens stay bound
// to ns after Do returns.
func Do(ns string, fn func() error) error {
	target, err := netns.GetFromPath(nsPath(ns))
	if err != nil {
		return fmt.Errorf("namespace %s: open: %w", ns, err)
	}
	defer target.Close()
	return doIn(ns, target, fn)
}

// doIn is Do with the target already open.
func doIn(ns string, target netns.NsHandle, fn func() error) (err error) {
	runtime.LockOSThread()
	origin, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("namespace %s: open this thread's namespace: %w", ns, err)
	}
	defer origin.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("namespace %s: enter: %w", ns, err)
	}
	defer func() {
		if rerr := netns.Set(origin); rerr != nil {
			// Stay locked: the thread dies with this goroutine.
			err = errors.Join(err, fmt.Errorf("namespace %s: restore thread's namespace: %w", ns, rerr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// ensureNetnsDir makes /run/netns a shared mount point, as `ip netns add`
// does, so namespace mounts made here propagate to other mount namespaces
// (such as the one `ip netns exec` makes) and theirs to us.
//
// Two callers that both find /run/netns not yet a mount point would each
// bind it onto itself, stacking two layers, and a namespace mounted between
// the two binds is copied into the upper one where removing it leaves the
// lower copy busy. An exclusive flock on the directory serialises the check
// and the bind among falab processes and goroutines (flock locks belong to
// the open file, so two opens in one process exclude each other too).
func ensureNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	dir, err := os.Open(netnsDir)
	if err != nil {
		return fmt.Errorf("open %s: %w", netnsDir, err)
	}
	defer dir.Close()
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", netnsDir, err)
	}
	// Closing dir releases the lock.
	err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", netnsDir, err)
	}
	// Not a mount point yet: bind it onto itself, then make it shared.
	if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s onto itself: %w", netnsDir, err)
	}
	if err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", netnsDir, err)
	}
	return nil
}

// exists reports whether a named namespace is mounted under /run/netns.
func exists(name string) (bool, error) {
	var want, have unix.Stat_t
	if err := unix.Stat(nsPath(name), &have); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("namespace %s: %w", name, err)
	}
	// A plain file left by a crash between create and mount is not a
	// namespace: its filesystem is not nsfs.
	if err := unix.Stat("/proc/self/ns/net", &want); err != nil {
		return false, fmt.Errorf("stat /proc/self/ns/net: %w", err)
	}
	return have.Dev == want.Dev, nil
}

// CreateNamespace creates network namespace name and bind-mounts it on
// /run/netns/NAME, as `ip netns add` does. It reports created=false if the
// namespace was already there. It is the project's one way to create a
// named namespace: Deploy and the root-only tests of every package use it.
//
// It makes /run/netns a shared mount point before it creates the namespace
// file. A namespace mounted on /run/netns/NAME while /run/netns is a plain
// directory gets buried when `ip netns add` later bind-mounts /run/netns
// onto itself: the kernel copies the mount into the new layer, unmount then
// removes only the copy, and the file stays busy (EBUSY) with the
// namespace alive below it.
//
// The new namespace is made on a locked thread that is switched back before
// unlocking; if that fails the thread stays locked and dies.
func CreateNamespace(name string) (created bool, err error) {
	if err := ValidateNamespaceName(name); err != nil {
		return false, err
	}
	if err := ensureNetnsDir(); err != nil {
		return false, err
	}
	if ok, err := exists(name); err != nil || ok {
		return false, err
	}
	path := nsPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if errors.Is(err, fs.ErrExist) {
		// A leftover plain file (exists said it is not a namespace).
		_ = unix.Unmount(path, unix.MNT_DETACH)
		if err := os.Remove(path); err != nil {
			return false, fmt.Errorf("namespace %s: remove stale %s: %w", name, path, err)
		}
		f, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	}
	if err != nil {
		return false, fmt.Errorf("namespace %s: create mount point: %w", name, err)
	}
	f.Close()

	mountErr := func() error {
		runtime.LockOSThread()
		origin, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			return fmt.Errorf("open this thread's namespace: %w", err)
		}
		defer origin.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return fmt.Errorf("unshare: %w", err)
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		mErr := unix.Mount(self, path, "none", unix.MS_BIND, "")
		if err := netns.Set(origin); err != nil {
			// Leave the thread locked so it dies rather than run other
			// goroutines inside the new namespace.
			return errors.Join(mErr, fmt.Errorf("restore thread's namespace: %w", err))
		}
		runtime.UnlockOSThread()
		if mErr != nil {
			return fmt.Errorf("bind-mount: %w", mErr)
		}
		return nil
	}()
	if mountErr != nil {
		os.Remove(path)
		return false, fmt.Errorf("namespace %s: %w", name, mountErr)
	}
	return true, nil
}

// RemoveNamespace unmounts and deletes /run/netns/NAME, as `ip netns del`
// does. A missing namespace is not an error. The kernel frees the namespace,
// and with it its veths and bridges, once no process or open file holds it.
// Names not starting with NamePrefix are refused.
func RemoveNamespace(name string) error {
	if err := ValidateNamespaceName(name); err != nil {
		return fmt.Errorf("refusing to remove: %w", err)
	}
	path := nsPath(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("namespace %s: unmount: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("namespace %s: remove %s: %w", name, path, err)
	}
	return nil
}

// Remove deletes the named namespaces, which deletes their veths (both ends:
// a veth dies with either end) and bridges. Missing namespaces are fine.
// Names not starting with NamePrefix are refused and nothing is done for
// them. A namespace stays alive while a process is inside it; find those
// with PIDsIn. Remove goes on past failures and returns them all.
func Remove(names []string) error {
	var errs []error
	for _, name := range names {
		if err := RemoveNamespace(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemovePrefix removes every namespace whose name starts with prefix and
// returns the names it removed. The prefix must itself start with NamePrefix.
func RemovePrefix(prefix string) ([]string, error) {
	if !strings.HasPrefix(prefix, NamePrefix) {
		return nil, fmt.Errorf("refusing to remove namespaces with prefix %q: it does not start with %q", prefix, NamePrefix)
	}
	names, err := List(prefix)
	if err != nil {
		return nil, err
	}
	return names, Remove(names)
}

// List returns the names under /run/netns that start with prefix, sorted.
func List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", netnsDir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// PIDsIn returns the processes whose network namespace is ns (compared by
// device and inode of /proc/PID/ns/net), so the caller can end them by PID
// before removing ns. Processes that exit while it looks are skipped.
func PIDsIn(ns string) ([]int, error) {
	var want unix.Stat_t
	if err := unix.Stat(nsPath(ns), &want); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat("/proc/"+e.Name()+"/ns/net", &st); err != nil {
			continue // exited, or a kernel thread we cannot read
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
