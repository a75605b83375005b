package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// falabBin is the binary under test, built once by TestMain.
var falabBin string

func TestMain(m *testing.M) {
	flag.Parse() // for testing.Short
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipping the end-to-end suite: it needs root to create network namespaces (run as root, as CI does)")
		os.Exit(m.Run())
	}
	if testing.Short() {
		fmt.Println("e2e: skipping the end-to-end suite in -short mode (it builds falab and creates network namespaces)")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "falab-e2e-bin-")
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	// Readable by all: one test runs the binary as an unprivileged user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	falabBin = filepath.Join(dir, "falab")
	out, err := exec.Command("go", "build", "-o", falabBin, "../cmd/falab").CombinedOutput()
	if err != nil {
		fmt.Printf("e2e: building falab: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needRoot skips a test that builds namespaces when not root, or in -short
// mode (TestMain then builds no binary either).
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces (CI runs as root)")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
}

// result is one falab run.
type result struct {
	stdout, stderr string
	code           int
}

// falab runs the binary with a run directory private to the test, so that
// tests never see a user's labs and a user never sees theirs.
func falab(t testing.TB, runDir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, falabBin, args...)
	cmd.Env = append(os.Environ(), "FALAB_RUN_DIR="+runDir)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{so.String(), se.String(), 0}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("falab %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustFalab runs falab and fails the test unless it exits 0.
func mustFalab(t testing.TB, runDir string, args ...string) string {
	t.Helper()
	r := falab(t, runDir, args...)
	if r.code != 0 {
		t.Fatalf("falab %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// upLab brings a lab up and registers its removal, which runs even when
// the test fails.
func upLab(t testing.TB, lab string, extra ...string) string {
	t.Helper()
	runDir := t.TempDir()
	t.Cleanup(func() { downRecorded(t, runDir) })
	mustFalab(t, runDir, append([]string{"up", lab, "--detach"}, extra...)...)
	return runDir
}

// inNode runs a command inside a lab node through falab exec.
func inNode(t testing.TB, runDir, node string, argv ...string) result {
	t.Helper()
	return falab(t, runDir, append([]string{"exec", node, "--"}, argv...)...)
}

// namespacesWithPrefix lists network namespaces starting with prefix.
func namespacesWithPrefix(t testing.TB, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// downRecorded removes every lab recorded in the test's run directory, by
// name: never `down --all`, which would also sweep a user's labs or another
// package's test namespaces.
func downRecorded(t testing.TB, runDir string) {
	t.Helper()
	ents, _ := os.ReadDir(runDir)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if r := falab(t, runDir, "down", e.Name()); r.code != 0 {
			t.Errorf("cleanup: falab down %s: exit %d: %s", e.Name(), r.code, r.stderr)
		}
	}
}
