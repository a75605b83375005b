package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/labs"
)

// tuiBinary is the falab under test, which has the tui verb.
func tuiBinary(t *testing.T) string { return falabBin }

// tmuxSession runs a command in a detached tmux session of its own server
// (its own socket), so that nothing of the user's tmux is touched; Cleanup
// kills that server.
type tmuxSession struct {
	t      *testing.T
	socket string
	name   string
}

func newTmux(t *testing.T, w, h int, env []string, argv ...string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the TUI test drives the TUI through it")
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("falab-e2e-tui-%d", os.Getpid()), name: "tui"}
	var cmd strings.Builder
	cmd.WriteString("env")
	for _, e := range env {
		cmd.WriteString(" " + shellQuote(e))
	}
	for _, a := range argv {
		cmd.WriteString(" " + shellQuote(a))
	}
	// The shell waits after the TUI exits so that its last words stay on
	// the pane to be read.
	cmd.WriteString("; echo TUI-EXITED $?; sleep 120")
	s.tmux("new-session", "-d", "-s", s.name, "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), cmd.String())
	t.Cleanup(func() {
		_ = exec.Command("tmux", "-L", s.socket, "kill-server").Run()
	})
	return s
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func (s *tmuxSession) pane() string { return s.tmux("capture-pane", "-p", "-t", s.name) }

func (s *tmuxSession) keys(k ...string) { s.tmux(append([]string{"send-keys", "-t", s.name}, k...)...) }

// waitFor polls the pane until re matches (an end-to-end test waits on the
// real lab; unit tests use a manual clock instead).
func (s *tmuxSession) waitFor(re *regexp.Regexp, within time.Duration) []string {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		p := s.pane()
		if m := re.FindStringSubmatch(p); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %v the TUI pane shows no %q:\n%s", within, re, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// labCopy writes the built-in default lab under another name (the name
// "default" is global on the machine: other labs may be using it), with
// optional text replacements, and returns the file.
func labCopy(t *testing.T, name string, replace ...string) string {
	t.Helper()
	data, ok := labs.Get("default")
	if !ok {
		t.Fatal("no built-in default lab")
	}
	text := strings.Replace(string(data), "name: default", "name: "+name, 1)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(text, replace[i]) {
			t.Fatalf("the default lab has no %q to replace", replace[i])
		}
		text = strings.Replace(text, replace[i], replace[i+1], 1)
	}
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTUIKillShowsTakeover runs `falab tui` in a terminal, kills the
// active with the TUI's own key and finds the takeover banner; then q
// quits and leaves the lab running.
func TestTUIKillShowsTakeover(t *testing.T) {
	needRoot(t)
	bin := tuiBinary(t)
	const name = "tuie2e"
	runDir := upLab(t, labCopy(t, name))
	s := newTmux(t, 120, 40, []string{"FALAB_RUN_DIR=" + runDir}, bin, "tui", name)

	s.waitFor(regexp.MustCompile(`fw-a primary\s+Active\s+fw-b secondary\s+Standby Ready`), 15*time.Second)
	s.keys("K")
	s.waitFor(regexp.MustCompile(`kill fw-a \(SIGKILL\)\? y yes`), 5*time.Second)
	s.keys("y")
	m := s.waitFor(regexp.MustCompile(`(\S+) took over in ([0-9.]+m?s): (.*?)\s{2,}`), 15*time.Second)
	if m[1] != "fw-b" {
		t.Errorf("banner says %s took over, want fw-b (the secondary)", m[1])
	}
	took, err := time.ParseDuration(m[2])
	if err != nil {
		t.Fatalf("banner time %q: %v", m[2], err)
	}
	t.Logf("banner: %s took over in %v: %s", m[1], took, m[3])
	if took <= 0 || took > 5*time.Second {
		t.Errorf("takeover took %v by the banner: not believable", took)
	}
	s.waitFor(regexp.MustCompile(`fw-a primary\s+no answer\s+fw-b secondary\s+Active`), 5*time.Second)

	s.keys("q")
	s.waitFor(regexp.MustCompile(`(?s)still running.*falab tui `+name+`.*falab down `+name+`.*TUI-EXITED 0`), 10*time.Second)
	if st := mustFalab(t, runDir, "status", name); !strings.Contains(st, "fw-b") {
		t.Errorf("after q the lab is not running:\n%s", st)
	}
}

// TestTUIBurnedInMACFlash uses a lab in burned-in MAC mode, where hosts
// re-learn the gateway after a takeover: the Hosts tab flashes the
// client's gateway entry with old -> new MAC.
func TestTUIBurnedInMACFlash(t *testing.T) {
	needRoot(t)
	bin := tuiBinary(t)
	const name = "tuie2eb"
	runDir := upLab(t, labCopy(t, name, "mac_mode: virtual", "mac_mode: burned-in"))
	// The client learns the gateway's MAC before the fault.
	if r := inNode(t, runDir, "client1", "ping", "-c", "2", "-i", "0.2", "198.18.2.11"); r.code != 0 {
		t.Fatalf("ping through the firewall: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	s := newTmux(t, 120, 40, []string{"FALAB_RUN_DIR=" + runDir}, bin, "tui", name)
	s.waitFor(regexp.MustCompile(`fw-a primary\s+Active\s+fw-b secondary\s+Standby Ready`), 15*time.Second)
	s.keys("0")   // Voice, the tenth tab
	s.keys("Tab") // Hosts, the eleventh
	s.waitFor(regexp.MustCompile(`198\.18\.1\.1\s+\S+\s+\S+\s+eth0\s+gateway`), 10*time.Second)
	s.keys("K")
	s.waitFor(regexp.MustCompile(`kill fw-a \(SIGKILL\)\? y yes`), 5*time.Second)
	s.keys("y")
	s.waitFor(regexp.MustCompile(`took over in`), 15*time.Second)
	// The client re-learns from the new active's gratuitous ARP.
	m := s.waitFor(regexp.MustCompile(`MAC ([0-9a-f:]{17}) -> ([0-9a-f:]{17})`), 10*time.Second)
	if m[1] == m[2] {
		t.Errorf("flash shows no change: %s -> %s", m[1], m[2])
	}
}

// TestTUIConfirmAndStale drives the real TUI: a destructive key asks y/n
// and any other key cancels it (the unit stays Active); after y freezes
// the active, its badge says frozen and the table read from it says since
// when it is stale, while fw-b takes over.
func TestTUIConfirmAndStale(t *testing.T) {
	needRoot(t)
	bin := tuiBinary(t)
	const name = "tuie2ec"
	runDir := upLab(t, labCopy(t, name))
	s := newTmux(t, 120, 40, []string{"FALAB_RUN_DIR=" + runDir}, bin, "tui", name)
	s.waitFor(regexp.MustCompile(`fw-a primary\s+Active\s+fw-b secondary\s+Standby Ready`), 15*time.Second)

	s.keys("z")
	s.waitFor(regexp.MustCompile(`freeze fw-a \(SIGSTOP\)\? y yes · any other key: no`), 5*time.Second)
	s.keys("k") // moves up, and cancels
	s.waitFor(regexp.MustCompile(`cancelled: freeze fw-a`), 5*time.Second)
	time.Sleep(time.Second) // long enough for a takeover, had the freeze run
	s.waitFor(regexp.MustCompile(`fw-a primary\s+Active\s+fw-b secondary\s+Standby Ready`), time.Second)

	s.keys("z")
	s.waitFor(regexp.MustCompile(`freeze fw-a \(SIGSTOP\)\? y yes`), 5*time.Second)
	s.keys("y")
	s.waitFor(regexp.MustCompile(`fw-a primary\s+frozen \(SIGSTOP\)`), 10*time.Second)
	s.waitFor(regexp.MustCompile(`fw-a: stale since \d\d:\d\d:\d\d \(not answering\)`), 10*time.Second)
	s.waitFor(regexp.MustCompile(`fw-b secondary\s+Active`), 15*time.Second)
	if p := s.pane(); regexp.MustCompile(`in step`).MatchString(tablePart(p)) {
		t.Errorf("with fw-a frozen, a table says it is in step:\n%s", p)
	}
	s.keys("t") // thaw: not destructive, no question
	s.waitFor(regexp.MustCompile(`fw-a primary\s+(Standby Ready|Bulk Sync|Failed|Active)`), 15*time.Second)
}

// tablePart is the pane below the header (the tab bar is the first line
// starting with a space and "Conns").
func tablePart(pane string) string {
	if i := strings.Index(pane, " Conns "); i >= 0 {
		return pane[i:]
	}
	return pane
}
