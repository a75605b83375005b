package labbench

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
)

// TestLinuxPairMeasured runs figure 10 alone (real labs: root only, not in
// -short): every Linux pair row is measured where keepalived and
// conntrackd are installed (in particular the backup takes the VIP after
// the master's crash and freeze), or n/a with the reason where they are
// missing.
func TestLinuxPairMeasured(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: brings up a lab (network namespaces, veths)")
	}
	if testing.Short() {
		t.Skip("brings up a real lab; skipped in -short mode")
	}
	t.Setenv("FALAB_RUN_DIR", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := Run(ctx, Options{Quick: true, Logger: log, Only: []int{10}}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	t.Logf("report:\n%s", out.String())
	tools := linuxPairTools()
	for _, id := range lpFigureIDs {
		f, ok := rep.Figure(id)
		switch {
		case !ok:
			t.Errorf("figure %s is missing", id)
		case tools == nil && f.Value == nil:
			t.Errorf("figure %s not measured with keepalived and conntrackd installed: %s", id, f.NA)
		case tools != nil && f.NA == "":
			t.Errorf("figure %s has no reason although %v", id, tools)
		}
	}
}

// TestLinuxPairConfigs writes both routers' configs for the default lab
// (no root): keepalived's as the issue describes it (VRRPv3, 10 ms
// adverts, one sync group, nopreempt, the VIPs), accepted by keepalived's
// own config test where it is installed, and conntrackd's shipped
// primary-backup.sh pointed at each router's own conntrackd config.
func TestLinuxPairConfigs(t *testing.T) {
	dir := t.TempDir()
	data, _ := labs.Get(labs.Default)
	l, err := labfile.Load("default.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(primaryBackupScript); err != nil {
		t.Skipf("conntrackd's primary-backup.sh is not installed (apt package conntrackd): %v", err)
	}
	p, err := newLinuxPair(l, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range p.units {
		if err := p.writeConfigs(u, l.Failover.Link.Interface); err != nil {
			t.Fatal(err)
		}
		ka, _ := os.ReadFile(filepath.Join(u.dir, "keepalived.conf"))
		for _, want := range []string{"vrrp_version 3", "advert_int 0.01", "nopreempt", "vrrp_sync_group G", "VI_IN", "VI_OUT",
			p.vipIn.String() + " dev inside", p.vipOut.String() + " dev outside", u.dir + "/primary-backup.sh primary"} {
			if !strings.Contains(string(ka), want) {
				t.Errorf("%s keepalived.conf lacks %q", u.name, want)
			}
		}
		sh, _ := os.ReadFile(filepath.Join(u.dir, "primary-backup.sh"))
		if !strings.Contains(string(sh), "CONNTRACKD_CONFIG="+u.dir+"/conntrackd.conf") || strings.Contains(string(sh), "/etc/conntrackd") {
			t.Errorf("%s primary-backup.sh is not pointed at its own config", u.name)
		}
		if _, err := exec.LookPath("keepalived"); err != nil {
			continue
		}
		out, _ := exec.Command("keepalived", "--config-test", "-l", "-f", filepath.Join(u.dir, "keepalived.conf")).CombinedOutput()
		for _, bad := range []string{"Unknown keyword", "invalid", "rror"} {
			if strings.Contains(string(out), bad) {
				t.Errorf("keepalived --config-test on %s's config:\n%s", u.name, out)
				break
			}
		}
	}
}

// TestParseExternalActive reads the external cache's count from
// conntrackd -s, not the internal cache's printed before it.
func TestParseExternalActive(t *testing.T) {
	out := `cache internal:
current active connections:	           7
connections created:		          10	failed:	           0

cache external:
current active connections:	        1234
connections created:		        1234	failed:	           0
`
	n, err := parseExternalActive(out)
	if err != nil || n != 1234 {
		t.Fatalf("parseExternalActive = %d, %v; want 1234", n, err)
	}
	if _, err := parseExternalActive("cache internal:\ncurrent active connections: 7\n"); err == nil {
		t.Error("no error without an external cache section")
	}
}

// TestLagOf takes each poll whose count grew as one sample, measured from
// the send of the newest flow the backup holds, and ignores polls that did
// not grow.
func TestLagOf(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(msec int) time.Time { return t0.Add(time.Duration(msec) * time.Millisecond) }
	sent := []poll{{at(0), 10}, {at(1), 20}, {at(2), 30}}
	ps := []poll{{at(1), 0}, {at(4), 10}, {at(5), 10}, {at(6), 25}, {at(9), 30}}
	r, err := lagOf(ps, sent, 30)
	if err != nil {
		t.Fatal(err)
	}
	// Samples: flow 10 sent at 0 held at 4 (4 ms), flow 25 sent at 2 held
	// at 6 (4 ms), flow 30 sent at 2 held at 9 (7 ms).
	if r.samples != 3 || r.max != 7 || r.p50 != 4 || r.reached != 30 {
		t.Errorf("lagOf = %+v; want 3 samples, p50 4, max 7, reached 30", r)
	}
	if _, err := lagOf([]poll{{at(1), 0}}, sent, 30); err == nil {
		t.Error("no error when the backup never held a flow")
	}
}

// TestTakeover: a crashed router's down links keep their addresses, so it
// still "holds" the VIP, yet it is never the master nor the one that took
// over; a frozen router (not crashed) keeps counting as a holder, but
// takeover looks only at the others.
func TestTakeover(t *testing.T) {
	a, b := &pairUnit{name: "fw-a"}, &pairUnit{name: "fw-b"}
	holds := map[*pairUnit]bool{a: true}
	p := &linuxPair{units: [2]*pairUnit{a, b}, hasVIP: func(u *pairUnit) bool { return holds[u] }}
	if p.master() != a || p.takeover(a) != nil {
		t.Fatalf("before the fault: master %v, takeover %v; want fw-a, none", p.master(), p.takeover(a))
	}
	holds[b] = true // the frozen fw-a still has it; fw-b took it too
	if p.takeover(a) != b {
		t.Errorf("after freezing fw-a, takeover = %v; want fw-b", p.takeover(a))
	}
	holds[b] = false
	a.crashed = true
	if p.master() != nil || p.takeover(a) != nil {
		t.Errorf("fw-a crashed, fw-b without the VIP: master %v, takeover %v; want none", p.master(), p.takeover(a))
	}
	holds[b] = true
	if p.master() != b || p.takeover(a) != b {
		t.Errorf("fw-a crashed, fw-b holds the VIP: master %v, takeover %v; want fw-b", p.master(), p.takeover(a))
	}
}

// TestRuleset: forward drop with established and inside-to-outside new,
// SNAT to the outside VIP; the INPUT drop of stateless outside TCP only in
// the hardened variant.
func TestRuleset(t *testing.T) {
	data, _ := labs.Get(labs.Default)
	l, err := labfile.Load("default.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newLinuxPair(l, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plain := p.ruleset()
	for _, want := range []string{"policy drop", "ct state established,related accept", `iifname "inside" oifname "outside" ct state new accept`,
		"snat to " + p.vipOut.Addr().String()} {
		if !strings.Contains(plain, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, plain)
		}
	}
	if strings.Contains(plain, "hook input") {
		t.Errorf("the plain pair has an input chain:\n%s", plain)
	}
	p.inputDrop = true
	if hard := p.ruleset(); !strings.Contains(hard, `iifname "outside" meta l4proto tcp ct state new,invalid drop`) {
		t.Errorf("the hardened ruleset lacks the INPUT drop:\n%s", hard)
	}
}

// TestLinuxPairWithoutTools: with neither keepalived nor conntrackd on the
// PATH every Linux pair row is n/a and says which packages are missing,
// before any lab is brought up (no root needed).
func TestLinuxPairWithoutTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	b := &bench{log: slog.New(slog.DiscardHandler)}
	figs := b.linuxPair(context.Background())
	if len(figs) != len(lpFigureIDs) {
		t.Fatalf("%d rows, want %d", len(figs), len(lpFigureIDs))
	}
	for i, f := range figs {
		if f.ID != lpFigureIDs[i] || f.Value != nil || !strings.Contains(f.NA, "keepalived and conntrackd not installed") {
			t.Errorf("row %d = %s value %v, n/a %q; want %s n/a naming the missing packages", i, f.ID, f.Value, f.NA, lpFigureIDs[i])
		}
	}
}
