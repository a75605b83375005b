package firewall

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

// toyEngine is an inspection engine for the tests. It records what it
// sees; it drops "DROP" and, for "MEDIA <port>", expects a UDP flow from
// the responder to the initiator's <port>.
type toyEngine struct {
	mu   sync.Mutex
	seen []string
}

var _ Inspector = (*toyEngine)(nil)

func (e *toyEngine) Inspect(x *Inspection) Verdict {
	msg := string(x.Payload)
	dir := "reply"
	if x.FromInitiator {
		dir = "orig"
	}
	e.mu.Lock()
	e.seen = append(e.seen, fmt.Sprintf("%s %s->%s %q", dir, ap(x.Orig.Src, x.Orig.SrcPort), ap(x.Orig.Dst, x.Orig.DstPort), msg))
	e.mu.Unlock()
	if msg == "DROP" {
		return VerdictDrop
	}
	if msg == "FORGED" {
		x.Drop = DropGTPUnknownTEID
		return VerdictDrop
	}
	if p, ok := strings.CutPrefix(msg, "MEDIA "); ok {
		port, _ := strconv.Atoi(p)
		x.Expect(Pinhole{Proto: header.ProtocolUDP, Src: x.Orig.Dst, Dst: x.Orig.Src, DstPort: uint16(port)})
	}
	return VerdictPass
}

func (e *toyEngine) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.seen
	e.seen = nil
	return s
}

// TestInspectionHook drives a toy engine on UDP 5060 between inside (100)
// and dmz (50), where no NAT applies and the policy refuses flows from the
// dmz to inside.
func TestInspectionHook(t *testing.T) {
	l := resolvedLab(t, labConfig())
	e := &toyEngine{}
	if err := l.fw.RegisterInspector(header.ProtocolUDP, 5060, e); err != nil {
		t.Fatal(err)
	}
	if err := l.fw.RegisterInspector(header.ProtocolUDP, 5060, e); err == nil {
		t.Errorf("a second engine for UDP 5060 was accepted")
	}
	toDMZ := func(sport, dport uint16, msg string) [][][]byte {
		return l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, dmzHost.ip, sport, dport, msg))
	}
	fromDMZ := func(sport, dport uint16, msg string) [][][]byte {
		return l.in(ifDMZ, udpFrame(dmzHost.mac, fwDMZMAC, dmzHost.ip, client.ip, sport, dport, msg))
	}

	// Only its port's packets reach the engine, both directions.
	only(t, toDMZ(40000, 5001, "other port"), ifDMZ, 1)
	only(t, toDMZ(40000, 5060, "INVITE"), ifDMZ, 1)
	only(t, fromDMZ(5060, 40000, "200 OK"), ifInside, 1)
	ctl := `198.18.1.10:40000->198.18.3.30:5060 `
	if d := cmp.Diff([]string{"orig " + ctl + `"INVITE"`, "reply " + ctl + `"200 OK"`}, e.take()); d != "" {
		t.Errorf("engine saw (-want +got):\n%s", d)
	}

	// A drop verdict drops the packet and counts it, under the engine's
	// own reason if it names one.
	nothing(t, toDMZ(40000, 5060, "DROP"))
	nothing(t, toDMZ(40000, 5060, "FORGED"))

	// The media flow back from the dmz is refused by the security levels
	// until the engine expects it; the pinhole admits it once.
	nothing(t, fromDMZ(7000, 6000, "rtp early"))
	only(t, toDMZ(40000, 5060, "MEDIA 6000"), ifDMZ, 1)
	only(t, fromDMZ(7000, 6000, "rtp 1"), ifInside, 1)
	only(t, fromDMZ(7000, 6000, "rtp 2"), ifInside, 1) // its connection now
	nothing(t, fromDMZ(7002, 6000, "another flow"))    // the pinhole is spent
	if d := cmp.Diff([]string{"orig " + ctl + `"DROP"`, "orig " + ctl + `"FORGED"`, "orig " + ctl + `"MEDIA 6000"`}, e.take()); d != "" {
		t.Errorf("engine saw (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]uint64{"inspect-drop": 1, "gtp-unknown-teid": 1, "security-level": 2}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

// TestPinholeExpires: a pinhole not used within its timeout admits nothing.
func TestPinholeExpires(t *testing.T) {
	l := resolvedLab(t, labConfig())
	if err := l.fw.RegisterInspector(header.ProtocolUDP, 5060, &toyEngine{}); err != nil {
		t.Fatal(err)
	}
	only(t, l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, dmzHost.ip, 40000, 5060, "MEDIA 6000")), ifDMZ, 1)
	l.clk.Advance(DefaultPinholeTimeout + time.Second)
	nothing(t, l.in(ifDMZ, udpFrame(dmzHost.mac, fwDMZMAC, dmzHost.ip, client.ip, 7000, 6000, "late")))
	if d := cmp.Diff(map[string]uint64{"security-level": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

// TestInspectionHookBridged: the hook and pinholes work the same in
// transparent mode, where the flow from outside (0) to inside (100) is
// refused without a pinhole.
func TestInspectionHookBridged(t *testing.T) {
	l := bridgeLab(t, transparentConfig())
	e := &toyEngine{}
	if err := l.fw.RegisterInspector(header.ProtocolUDP, 5060, e); err != nil {
		t.Fatal(err)
	}
	only(t, l.in(ifInside, udpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 5060, "MEDIA 6000")), ifOutside, 1)
	nothing(t, l.in(ifInside, udpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 5060, "DROP")))
	only(t, l.in(ifOutside, udpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 7000, 6000, "rtp")), ifInside, 1)
	nothing(t, l.in(ifOutside, udpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 7002, 6000, "another")))
	if n := len(e.take()); n != 2 {
		t.Errorf("engine saw %d packets, want 2", n)
	}
	if d := cmp.Diff(map[string]uint64{"inspect-drop": 1, "security-level": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

// TestEngineBoundOnStandby: a connection adopted from a replication
// record binds the engine registered for its port, as on the active.
func TestEngineBoundOnStandby(t *testing.T) {
	l := newLab(t, labConfig())
	e := &toyEngine{}
	if err := l.fw.RegisterInspector(header.ProtocolUDP, 5060, e); err != nil {
		t.Fatal(err)
	}
	now := l.fw.now()
	for _, port := range []uint16{5060, 5061} {
		rec := ConnRecord{
			Orig:        Tuple{Proto: header.ProtocolUDP, Src: client.ip, Dst: dmzHost.ip, SrcPort: 40000, DstPort: port},
			Reply:       Tuple{Proto: header.ProtocolUDP, Src: dmzHost.ip, Dst: client.ip, SrcPort: port, DstPort: 40000},
			InInterface: "inside", OutInterface: "dmz", Created: now, LastSeen: now,
		}
		if err := l.fw.ApplyChange(Change{Table: TableConn, Op: OpUpsert, Conn: rec}); err != nil {
			t.Fatal(err)
		}
		c, _ := l.fw.conns.lookup(rec.Orig)
		if bound := c != nil && c.engine != nil; bound != (port == 5060) {
			t.Errorf("port %d: engine bound %v", port, bound)
		}
	}
}
