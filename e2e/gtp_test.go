package e2e

import (
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/gtp"
	"github.com/falab/falab/gtp/gtpclient"
	"github.com/falab/falab/topo"
)

// The gtp lab's addresses (labs/gtp.yaml): the GGSN inside, and a second
// address of the SGSN's host (198.18.2.11, outside) as the "new SGSN" of
// an Update PDP Context.
var (
	gtpGGSN    = netip.MustParseAddr("198.18.1.11")
	gtpNewSGSN = netip.MustParseAddrPort("198.18.2.12:2123")
)

// needGSNs skips unless osmo-ggsn, sgsnemu and scapy (system python) are
// installed; .ci/run installs them.
func needGSNs(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"osmo-ggsn", "sgsnemu"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (apt-get install osmo-ggsn; .ci/run installs it)", bin)
		}
	}
	if exec.Command("/usr/bin/python3", "-c", "import scapy.all").Run() != nil {
		t.Skip("needs scapy under /usr/bin/python3 (apt-get install python3-scapy)")
	}
}

// pdpContexts reads a unit's PDP contexts through `falab show`.
func pdpContexts(t *testing.T, runDir, unit string) api.PDPContexts {
	t.Helper()
	var p api.PDPContexts
	out := mustFalab(t, runDir, "show", "service-policy", "inspect", "gtp", "pdp-context", "--unit", unit, "--json")
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("pdp-context --json: %v\n%s", err, out)
	}
	return p
}

func unitDrops(t *testing.T, runDir, unit string) map[string]uint64 {
	t.Helper()
	var d map[string]uint64
	if err := json.Unmarshal([]byte(mustFalab(t, runDir, "show", "asp-drop", "--unit", unit, "--json")), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// waitPDP waits until unit holds one context that passed at least n
// G-PDUs, and returns it.
func waitPDP(t *testing.T, runDir, unit string, n uint64) api.PDPContext {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p := pdpContexts(t, runDir, unit)
		if len(p.Contexts) == 1 && p.Contexts[0].Upstream+p.Contexts[0].Downstream >= n {
			return p.Contexts[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no PDP context with %d G-PDUs within 15s: %+v", unit, n, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGTP runs real GSNs through the pair: sgsnemu creates a PDP context
// with osmo-ggsn and pings through GTP-U; both units hold the context with
// the same TEIDs; a G-PDU with a random TEID (scapy) is dropped and
// counted as gtp-unknown-teid, changing nothing; an Update PDP Context
// from a new SGSN (gtpclient: sgsnemu never sends one) moves the context
// on both units; a Delete from the new SGSN removes it from both.
func TestGTP(t *testing.T) {
	needRoot(t)
	needGSNs(t)
	runDir := upLab(t, "gtp")
	waitActive(t, runDir, "fw-a")
	startBG(t, runDir, "sgsn", "sh", "-c", "d=$(mktemp -d); exec timeout -s KILL 60 sgsnemu"+
		" --listen 198.18.2.11 --remote 198.18.1.11 --apn internet --imsi 001010123456789 --nsapi 5"+
		" --statedir $d --pidfile $d/sgsnemu.pid --pinghost 198.19.200.0 --pingrate 5 --pingcount 1000 --timelimit 60")
	ctx := waitPDP(t, runDir, "fw-a", 8)
	standby := pdpContexts(t, runDir, "fw-b")
	if len(standby.Contexts) != 1 || standby.Contexts[0].SGSNDataTEID != ctx.SGSNDataTEID || standby.Contexts[0].GGSNDataTEID != ctx.GGSNDataTEID {
		t.Fatalf("standby's PDP contexts %+v, want the active's %+v", standby.Contexts, ctx)
	}

	// Hostile: a G-PDU to the GGSN with a TEID of no context.
	before := unitDrops(t, runDir, "fw-a")["gtp-unknown-teid"]
	forge := "from scapy.all import IP, UDP, ICMP, send\n" +
		"from scapy.contrib.gtp import GTP_U_Header\n" +
		"send(IP(src='198.18.2.11', dst='198.18.1.11')/UDP(sport=2152, dport=2152)/GTP_U_Header(teid=0x5eed1234)/" +
		"IP(src='198.19.200.1', dst='198.19.200.0')/ICMP(), verbose=0)\n"
	if r := inNode(t, runDir, "sgsn", "/usr/bin/python3", "-c", forge); r.code != 0 {
		t.Fatalf("scapy: exit %d: %s", r.code, r.stderr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for unitDrops(t, runDir, "fw-a")["gtp-unknown-teid"] <= before {
		if time.Now().After(deadline) {
			t.Fatalf("the forged G-PDU was not counted as gtp-unknown-teid: %v", unitDrops(t, runDir, "fw-a"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p := pdpContexts(t, runDir, "fw-a"); p.InUse != 1 {
		t.Errorf("after the forged G-PDU: %d contexts in use, want 1", p.InUse)
	}

	// Update PDP Context from a new SGSN, then Delete from it.
	ns := "falab-gtp-sgsn"
	if r := inNode(t, runDir, "sgsn", "ip", "addr", "add", gtpNewSGSN.Addr().String()+"/24", "dev", "eth0"); r.code != 0 {
		t.Fatalf("new SGSN address: %s", r.stderr)
	}
	ggsn := netip.AddrPortFrom(gtpGGSN, gtp.ControlPort)
	var res gtpclient.Result
	err := topo.Do(ns, func() error {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		res, err = gtpclient.SendUpdate(c, gtpclient.Update{Local: gtpNewSGSN, GGSN: ggsn,
			GGSNControlTEID: ctx.GGSNControlTEID, NSAPI: ctx.NSAPI,
			SGSNControlTEID: ctx.SGSNControlTEID, SGSNDataTEID: 0x2002, Seq: 4242})
		return err
	})
	if err != nil || !res.Accepted() {
		t.Fatalf("Update PDP Context through the pair: %+v, %v", res, err)
	}
	for _, u := range []string{"fw-a", "fw-b"} {
		p := pdpContexts(t, runDir, u)
		if len(p.Contexts) != 1 || p.Contexts[0].SGSNControl != gtpNewSGSN.Addr().String() || p.Contexts[0].SGSNDataTEID != 0x2002 {
			t.Errorf("%s after Update: %+v, want the SGSN at %s with data TEID 0x2002", u, p.Contexts, gtpNewSGSN.Addr())
		}
	}
	err = topo.Do(ns, func() error {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		res, err = gtpclient.SendDelete(c, gtpclient.Delete{Local: gtpNewSGSN, GGSN: ggsn,
			GGSNControlTEID: ctx.GGSNControlTEID, NSAPI: ctx.NSAPI, Seq: 4243})
		return err
	})
	if err != nil || !res.Accepted() {
		t.Fatalf("Delete PDP Context through the pair: %+v, %v", res, err)
	}
	for _, u := range []string{"fw-a", "fw-b"} {
		if p := pdpContexts(t, runDir, u); p.InUse != 0 {
			t.Errorf("%s after Delete: %d contexts in use", u, p.InUse)
		}
	}
	if out := mustFalab(t, runDir, "show", "service-policy", "inspect", "gtp", "pdp-context", "detail"); !strings.Contains(out, "0 in use") {
		t.Errorf("show after Delete:\n%s", out)
	}
}
