package firewall

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

// natEngine exercises the hook's NAT and pinhole calls. On "MAP <port>"
// it maps the sender's <port> to the other side, replaces the payload
// with "at <mapped>" and expects the peer's flow to the real <port>; on
// "CLOSE <port>" it closes that pinhole; "GROW" doubles the payload and
// "UNMAP" names the sender's view of the receiver, untranslated. It
// records the TCP sequence numbers it sees.
type natEngine struct {
	mu   sync.Mutex
	seqs []uint32
	said []string
}

func (e *natEngine) Inspect(x *Inspection) Verdict {
	msg := string(x.Payload)
	e.mu.Lock()
	defer e.mu.Unlock()
	if x.Orig.Proto == header.ProtocolTCP && len(x.Payload) > 0 {
		e.seqs = append(e.seqs, x.Seq)
	}
	sender, peer := x.Orig.Src, x.Orig.Dst
	if !x.FromInitiator {
		sender, peer = x.Reply.Src, x.Reply.Dst
	}
	switch word, arg, _ := strings.Cut(msg, " "); word {
	case "MAP":
		port, _ := strconv.Atoi(arg)
		a, p, ok := x.MapAddr(x.Orig.Proto, sender, uint16(port))
		x.Replace([]byte(fmt.Sprintf("at %s %v", ap(a, p), ok)))
		x.Expect(Pinhole{Proto: header.ProtocolUDP, Src: peer, Dst: sender, DstPort: uint16(port)})
	case "CLOSE":
		port, _ := strconv.Atoi(arg)
		x.Close(Pinhole{Proto: header.ProtocolUDP, Src: peer, Dst: sender, DstPort: uint16(port)})
	case "NOSESSION":
		x.Drop = DropCTIQBENoSession
		return VerdictDrop
	case "GROW":
		x.Replace([]byte(msg + msg))
	case "UNMAP":
		dst, dport := x.Orig.Dst, x.Orig.DstPort // the receiver as the sender addresses it
		if !x.FromInitiator {
			dst, dport = x.Reply.Dst, x.Reply.DstPort
		}
		a, p, ok := x.UnmapAddr(x.Orig.Proto, dst, dport)
		e.said = append(e.said, fmt.Sprintf("%s %v", ap(a, p), ok))
	}
	return VerdictPass
}

// withoutUDPChecksum clears a UDP frame's checksum (RFC 768: none sent).
func withoutUDPChecksum(frame []byte) []byte {
	ip := header.IPv4(frame[header.EthernetLen:])
	header.UDP(ip.Payload()).SetChecksum(0)
	return frame
}

// TestInspectReplacePayloadUnderPAT: a payload replaced with a longer one
// leaves with both lengths and both checksums right (decode verifies
// them), and with the PAT translation applied after the engine.
func TestInspectReplacePayloadUnderPAT(t *testing.T) {
	l := resolvedLab(t, labConfig())
	if err := l.fw.RegisterInspector(header.ProtocolUDP, 5060, &natEngine{}); err != nil {
		t.Fatal(err)
	}
	for _, sum := range []bool{false, true} {
		fr := udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 5060, "GROW")
		if !sum {
			fr = withoutUDPChecksum(fr)
		}
		out := only(t, l.in(ifInside, fr), ifOutside, 1)
		got := decode(t, out[0])
		if got.Payload != "GROWGROW" || got.Src != ap(outsideIP, 40000) || got.Dst != ap(server.ip, 5060) {
			t.Errorf("checksum %v: sent %+v", sum, got)
		}
		ip := header.IPv4(out[0][header.EthernetLen:])
		if u := header.UDP(ip.Payload()); int(u.Length()) != len(ip.Payload()) || (u.Checksum() != 0) != sum {
			t.Errorf("checksum %v: UDP length %d for %d bytes, checksum %#x", sum, u.Length(), len(ip.Payload()), u.Checksum())
		}
	}
}

// TestPinholeBehindPAT: a phone behind PAT names its media port; the
// engine maps it (allocating the PAT port) and expects the outside
// party's flow to the phone's real port. The outside party's flow to the
// mapped port reaches the phone's real port, once; without the pinhole
// the same packet is addressed to the unit (interface PAT).
func TestPinholeBehindPAT(t *testing.T) {
	l := resolvedLab(t, labConfig())
	if err := l.fw.RegisterInspector(header.ProtocolUDP, 5060, &natEngine{}); err != nil {
		t.Fatal(err)
	}
	nothing(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 7000, 6000, "early")))
	res := l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5060, 5060, "MAP 6000"))
	out := only(t, res, ifOutside, 1)
	var mapped string
	var ok bool
	if _, err := fmt.Sscanf(decode(t, out[0]).Payload, "at %s %t", &mapped, &ok); err != nil || !ok {
		t.Fatalf("engine's payload %q: %v", decode(t, out[0]).Payload, err)
	}
	mport, _ := strconv.Atoi(mapped[strings.LastIndex(mapped, ":")+1:])
	if mapped[:strings.LastIndex(mapped, ":")] != "198.19.2.1" {
		t.Fatalf("mapped to %s, want the outside PAT address", mapped)
	}
	got := decode(t, only(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 7000, uint16(mport), "rtp")), ifInside, 1)[0])
	if got.Dst != ap(client.ip, 6000) || got.Src != ap(server.ip, 7000) {
		t.Errorf("media delivered as %+v, want to %s", got, ap(client.ip, 6000))
	}
	// The phone's own media out takes the same mapped port (one xlate).
	got = decode(t, only(t, l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 6000, 7000, "rtp back")), ifOutside, 1)[0])
	if got.Src != mapped {
		t.Errorf("phone's media left from %s, want %s", got.Src, mapped)
	}
	// Spent: another source gets nothing.
	nothing(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 7002, uint16(mport), "other")))
	if d := cmp.Diff(map[string]uint64{"to-self": 2}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

// TestPinholeClose: a pinhole the engine closes admits nothing.
func TestPinholeClose(t *testing.T) {
	l := resolvedLab(t, labConfig())
	if err := l.fw.RegisterInspector(header.ProtocolUDP, 5060, &natEngine{}); err != nil {
		t.Fatal(err)
	}
	to := func(msg string) {
		only(t, l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, dmzHost.ip, 5060, 5060, msg)), ifDMZ, 1)
	}
	to("MAP 6000")
	if l.fw.Pinholes() != 1 {
		t.Fatalf("%d pinholes open, want 1", l.fw.Pinholes())
	}
	to("CLOSE 6000")
	if l.fw.Pinholes() != 0 {
		t.Fatalf("%d pinholes open after Close, want 0", l.fw.Pinholes())
	}
	nothing(t, l.in(ifDMZ, udpFrame(dmzHost.mac, fwDMZMAC, dmzHost.ip, client.ip, 7000, 6000, "rtp")))
	// OpenPinhole (a standby re-opening an engine's records) admits it.
	if !l.fw.OpenPinhole(Pinhole{Proto: header.ProtocolUDP, Dst: client.ip, DstPort: 6000}) {
		t.Fatal("OpenPinhole refused")
	}
	only(t, l.in(ifDMZ, udpFrame(dmzHost.mac, fwDMZMAC, dmzHost.ip, client.ip, 7000, 6000, "rtp")), ifInside, 1)
}

// TestInspectionSeqAndUnmap: the engine sees each TCP segment's sequence
// number as the sender wrote it, UnmapAddr turns the mapped endpoint the
// outside party addresses back into the real one, and Inspection.Drop
// counts the engine's own reason.
func TestInspectionSeqAndUnmap(t *testing.T) {
	l := resolvedLab(t, labConfig())
	e := &natEngine{}
	if err := l.fw.RegisterInspector(header.ProtocolTCP, 2748, e); err != nil {
		t.Fatal(err)
	}
	if err := l.fw.RegisterInspector(header.ProtocolUDP, 5060, e); err != nil {
		t.Fatal(err)
	}
	l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 41000, 2748, SYN, ""))
	l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 2748, 41000, SYN|ACK, ""))
	l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 41000, 2748, ACK, ""))
	for _, msg := range []string{"hello", "world"} {
		only(t, l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 41000, 2748, ACK|PSH, msg)), ifOutside, 1)
	}
	e.mu.Lock()
	seqs := append([]uint32(nil), e.seqs...)
	e.mu.Unlock()
	if d := cmp.Diff([]uint32{tcpISN + 1, tcpISN + 6}, seqs); d != "" {
		t.Errorf("sequence numbers seen (-want +got):\n%s", d)
	}
	only(t, l.in(ifInside, udpFrame(staticHost.mac, fwInsideMAC, staticHost.ip, server.ip, 5060, 5060, "x")), ifOutside, 1)
	only(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, staticMapped, 5060, 5060, "UNMAP")), ifInside, 1)
	nothing(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, staticMapped, 5060, 5060, "NOSESSION")))
	if d := cmp.Diff(map[string]uint64{"ctiqbe-no-session": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{ap(staticHost.ip, 5060) + " true"}, e.said); d != "" {
		t.Errorf("UnmapAddr (-want +got):\n%s", d)
	}
}
