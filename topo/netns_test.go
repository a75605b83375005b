package topo

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests here reproduce a fresh machine, where /run/netns is not yet a
// mount point, without touching the machine's own /run/netns: the test
// re-runs itself as a child in a private mount namespace (Go marks / private
// there), unmounts /run/netns in that copy only, and works on that. The
// namespaces it makes are mounted only in the child's mount namespace, so
// they die with it whatever happens; their mount-point files sit in the
// real /run/netns directory until removed, so the parent removes them too.

// freshEnv, when set in a child's environment, names the namespace prefix
// the child works under; the child then runs the test's body.
const freshEnv = "FALAB_TOPO_FRESH_NETNS_PREFIX"

// inFreshMountNS runs body in a child process (this test binary, running
// only the calling test) that has a private mount namespace in which
// /run/netns is not a mount point. The parent waits for the child and
// fails if it failed, showing its output; testPrefix's cleanup then removes
// whatever the child left under the prefix.
func inFreshMountNS(t *testing.T, body func(t *testing.T, prefix string)) {
	t.Helper()
	if prefix := os.Getenv(freshEnv); prefix != "" {
		unmountRunNetns(t)
		body(t, prefix)
		return
	}
	requireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: needs the ip command (iproute2)")
	}
	prefix, _ := testPrefix(t)
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), freshEnv+"="+prefix)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: unix.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("child in a private mount namespace:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
}

// unmountRunNetns takes every mount off /run/netns in this (private)
// mount namespace, so it is the plain directory of a fresh boot.
func unmountRunNetns(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		err := unix.Unmount(netnsDir, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) {
			break // not a mount point
		}
		if err != nil {
			t.Fatalf("unmount %s: %v", netnsDir, err)
		}
	}
	if ms := mountsAt(t, netnsDir); len(ms) != 0 {
		t.Fatalf("%s is still a mount point in the child: %+v", netnsDir, ms)
	}
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	id, parent string
	point      string
	optional   []string // e.g. "shared:12"
}

// mountsAt returns the mounts whose mount point is point, bottom first.
func mountsAt(t *testing.T, point string) []mountEntry {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ms []mountEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 || fields[4] != point {
			continue
		}
		sep := slices.Index(fields, "-")
		if sep < 6 {
			t.Fatalf("mountinfo line without its separator: %q", sc.Text())
		}
		ms = append(ms, mountEntry{id: fields[0], parent: fields[1], point: fields[4], optional: fields[6:sep]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ms
}

func (m mountEntry) shared() bool {
	return slices.ContainsFunc(m.optional, func(o string) bool { return strings.HasPrefix(o, "shared:") })
}

// requireOneSharedRunNetns checks that /run/netns is exactly one mount,
// shared, and returns it.
func requireOneSharedRunNetns(t *testing.T) mountEntry {
	t.Helper()
	ms := mountsAt(t, netnsDir)
	if len(ms) != 1 {
		t.Fatalf("%s has %d mounts, want exactly 1: %+v", netnsDir, len(ms), ms)
	}
	if !ms[0].shared() {
		t.Fatalf("%s is a mount point but not shared: %+v", netnsDir, ms[0])
	}
	return ms[0]
}

// TestCreateNamespaceMountsRunNetnsFirst: on a fresh /run/netns,
// CreateNamespace makes /run/netns a shared mount point and then mounts the
// namespace inside that mount. Had the namespace been mounted first, its
// mount's parent would be the filesystem below /run/netns, and the later
// /run/netns mount would hide it.
func TestCreateNamespaceMountsRunNetnsFirst(t *testing.T) {
	inFreshMountNS(t, func(t *testing.T, prefix string) {
		name := prefix + "first"
		created, err := CreateNamespace(name)
		if err != nil || !created {
			t.Fatalf("CreateNamespace(%s) = %v, %v; want true, nil", name, created, err)
		}
		defer RemoveNamespace(name)
		dir := requireOneSharedRunNetns(t)
		ns := mountsAt(t, nsPath(name))
		if len(ns) != 1 {
			t.Fatalf("namespace %s has %d mounts, want 1: %+v", name, len(ns), ns)
		}
		if ns[0].parent != dir.id {
			t.Errorf("namespace mount's parent is mount %s, want %s (the shared %s): the namespace was mounted before %s was a mount point",
				ns[0].parent, dir.id, netnsDir, netnsDir)
		}
		// A second creation finds it and leaves the mounts as they are.
		if created, err := CreateNamespace(name); err != nil || created {
			t.Errorf("CreateNamespace of an existing namespace = %v, %v; want false, nil", created, err)
		}
		requireOneSharedRunNetns(t)
		if err := RemoveNamespace(name); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(nsPath(name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after RemoveNamespace, stat %s: %v; want it gone", nsPath(name), err)
		}
	})
}

// TestCreateNamespaceThenIPNetnsAdd is issue 10's sequence on a fresh
// /run/netns: ours is created, then iproute2's `ip netns add` creates
// another, then ours is removed. With ours mounted on a plain directory,
// ip's bind of /run/netns onto itself copies our mount into a new layer and
// removing ours fails with EBUSY, leaving the namespace behind.
func TestCreateNamespaceThenIPNetnsAdd(t *testing.T) {
	inFreshMountNS(t, func(t *testing.T, prefix string) {
		ours, theirs := prefix+"ours", prefix+"ip"
		if _, err := CreateNamespace(ours); err != nil {
			t.Fatal(err)
		}
		defer RemoveNamespace(ours)
		if out, err := exec.Command("ip", "netns", "add", theirs).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v\n%s", theirs, err, out)
		}
		defer exec.Command("ip", "netns", "del", theirs).Run()
		requireOneSharedRunNetns(t)

		if err := RemoveNamespace(ours); err != nil {
			t.Fatalf("RemoveNamespace(%s) after ip netns add: %v", ours, err)
		}
		if _, err := os.Stat(nsPath(ours)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stat %s after removal: %v; want it gone", nsPath(ours), err)
		}
		if ms := mountsAt(t, nsPath(ours)); len(ms) != 0 {
			t.Errorf("namespace %s is still mounted after removal (buried): %+v", ours, ms)
		}
		if out, err := exec.Command("ip", "netns", "del", theirs).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", theirs, err, out)
		}
		if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil || strings.Contains(string(out), prefix) {
			t.Errorf("ip netns list after both removals: %v\n%s", err, out)
		}
	})
}

// TestEnsureNetnsDirIdempotent: calling it again on a shared /run/netns adds
// no second layer.
func TestEnsureNetnsDirIdempotent(t *testing.T) {
	inFreshMountNS(t, func(t *testing.T, _ string) {
		for i := range 3 {
			if err := ensureNetnsDir(); err != nil {
				t.Fatal(err)
			}
			if ms := mountsAt(t, netnsDir); len(ms) != 1 {
				t.Fatalf("after %d calls %s has %d mounts, want 1: %s", i+1, netnsDir, len(ms), fmt.Sprint(ms))
			}
		}
	})
}
