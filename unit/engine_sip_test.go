package unit

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
	"github.com/falab/falab/fwconfig"
	"github.com/falab/falab/render"
	"github.com/falab/falab/replicate"
)

// A phone inside (behind PAT on the outside address) calls one outside.
var (
	phone     = [4]byte{198, 18, 1, 10}
	peerPhone = [4]byte{198, 18, 2, 20}
	patAddr   = [4]byte{198, 18, 2, 1}
	phoneMAC  = [6]byte{2, 0, 0, 0, 1, 10}
	peerMAC   = [6]byte{2, 0, 0, 0, 2, 20}
	fwInMAC   = [6]byte{2, 0xfa, 0, 0, 0, 1}
	fwOutMAC  = [6]byte{2, 0xfa, 0, 0, 0, 3}
)

// voiceUnit is a unit inspecting SIP and CTIQBE, with PAT from inside to
// outside and recorder ports, its ARP table primed with both phones.
type voiceUnit struct {
	*Unit
	in, out *memport.Recorder
}

func newVoiceUnit(t *testing.T, name string, noReplicate ...string) *voiceUnit {
	t.Helper()
	cfg := testConfig(false)
	cfg.Name, cfg.Peer = name, "fw-x"
	cfg.LocalAddr, cfg.PeerAddr = netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1")
	cfg.Firewall.NAT = []fwconfig.NATRule{{Kind: fwconfig.NATDynamicPAT, RealInterface: "inside",
		Real: netip.MustParsePrefix("198.18.1.0/24"), MappedInterface: "outside"}}
	cfg.Firewall.Inspect.SIP = &fwconfig.SIPInspect{}
	cfg.Firewall.Inspect.CTIQBE = &fwconfig.CTIQBEInspect{}
	cfg.NoReplicate = noReplicate
	v := &voiceUnit{in: memport.NewRecorder(), out: memport.NewRecorder()}
	u, err := New(cfg, testKey(1), map[string]firewall.Port{"inside": v.in, "outside": v.out}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	v.Unit = u
	u.fw.SetActive(true)
	u.fw.HandleFrame(0, arpRequest(phoneMAC, phone, [4]byte{198, 18, 1, 1}))
	u.fw.HandleFrame(1, arpRequest(peerMAC, peerPhone, patAddr))
	v.in.Take()
	v.out.Take()
	return v
}

func arpRequest(sha [6]byte, spa, tpa [4]byte) []byte {
	b := make([]byte, 60)
	e := header.Ethernet(b)
	e.SetDestination([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	e.SetSource(sha[:])
	e.SetEtherType(header.EtherTypeARP)
	a := header.ARP(e.Payload())
	a.SetIPv4OverEthernet()
	a.SetOp(1)
	a.SetSender(sha[:], spa)
	a.SetTarget(make([]byte, 6), tpa)
	return b
}

func udpDatagram(ethSrc, ethDst [6]byte, src, dst [4]byte, sport, dport uint16, payload string) []byte {
	b := make([]byte, header.EthernetLen+header.IPv4MinimumSize+header.UDPMinimumSize+len(payload))
	e := header.Ethernet(b)
	e.SetDestination(ethDst[:])
	e.SetSource(ethSrc[:])
	e.SetEtherType(header.EtherTypeIPv4)
	ip := header.IPv4(e.Payload())
	ip.SetVersionAndHeaderLength(header.IPv4MinimumSize)
	ip.SetTotalLength(uint16(len(ip)))
	ip.SetTTL(64)
	ip.SetProtocol(header.ProtocolUDP)
	ip.SetSourceAddress(src)
	ip.SetDestinationAddress(dst)
	ip.SetChecksum(ip.CalculateChecksum())
	u := header.UDP(ip.Payload())
	u.SetSourcePort(sport)
	u.SetDestinationPort(dport)
	u.SetLength(uint16(len(u)))
	copy(u[header.UDPMinimumSize:], payload)
	u.SetChecksum(u.CalculateChecksum(src, dst))
	return b
}

// sent is one datagram a port sent, checked.
type sent struct {
	src, dst netip.AddrPort
	payload  string
}

// take returns the datagrams r sent, failing on a bad length or checksum.
func take(t *testing.T, r *memport.Recorder) []sent {
	t.Helper()
	var l []sent
	for _, fr := range r.Take() {
		ip := header.IPv4(header.Ethernet(fr).Payload())
		if !ip.ChecksumValid() || int(ip.TotalLength()) != len(ip) {
			t.Fatalf("bad IP header in % x", fr)
		}
		u := header.UDP(ip.Payload())
		if int(u.Length()) != len(u) || header.Checksum(u, header.PseudoHeaderChecksum(header.ProtocolUDP, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(u)))) != 0xffff {
			t.Fatalf("bad UDP length or checksum in % x", fr)
		}
		l = append(l, sent{netip.AddrPortFrom(netip.AddrFrom4(ip.SourceAddress()), u.SourcePort()),
			netip.AddrPortFrom(netip.AddrFrom4(ip.DestinationAddress()), u.DestinationPort()), string(u[header.UDPMinimumSize:])})
	}
	return l
}

// sipMsg builds a message; sdp, if not empty, is an audio offer or answer
// at that address and port.
func sipMsg(start, via, from, to, contact string, cseq string, sdpAddr string, sdpPort int) string {
	body := ""
	if sdpAddr != "" {
		body = fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", sdpAddr, sdpAddr, sdpPort)
	}
	h := []string{start, "Via: SIP/2.0/UDP " + via, "From: <sip:a@x>;tag=" + from, "To: <sip:b@y>" + to,
		"Call-ID: call-1@198.18.1.10", "CSeq: " + cseq, "Contact: <sip:a@" + contact + ">"}
	if body != "" {
		h = append(h, "Content-Type: application/sdp")
	}
	h = append(h, "Content-Length: "+strconv.Itoa(len(body)), "")
	return strings.Join(h, "\r\n") + "\r\n" + body
}

var (
	invite = sipMsg("INVITE sip:b@198.18.2.20 SIP/2.0", "198.18.1.10:5060;branch=z9hG4bK-1", "ft", "", "198.18.1.10:5060", "1 INVITE", "198.18.1.10", 6000)
	ok200  = sipMsg("SIP/2.0 200 OK", "198.18.2.1:5060;branch=z9hG4bK-1", "ft", ";tag=tt", "198.18.2.20:5060", "1 INVITE", "198.18.2.20", 7000)
	bye    = sipMsg("BYE sip:b@198.18.2.20 SIP/2.0", "198.18.1.10:5060;branch=z9hG4bK-2", "ft", ";tag=tt", "198.18.1.10:5060", "2 BYE", "", 0)
)

// TestSIPCallThroughPAT: a call from a phone behind PAT. The INVITE leaves
// with Via, Contact and SDP naming the PAT address and a mapped media port
// (lengths and checksums right); the 200's Via comes back naming the
// phone; the outside phone's RTP to the mapped media port reaches the
// phone's real port through the pinhole the offer opened.
func TestSIPCallThroughPAT(t *testing.T) {
	a := newVoiceUnit(t, "fw-a")
	a.fw.HandleFrame(0, udpDatagram(phoneMAC, fwInMAC, phone, peerPhone, 5060, 5060, invite))
	out := take(t, a.out)
	if len(out) != 1 {
		t.Fatalf("INVITE: %d datagrams out", len(out))
	}
	m := regexp.MustCompile(`m=audio (\d+) `).FindStringSubmatch(out[0].payload)
	for _, want := range []string{"Via: SIP/2.0/UDP 198.18.2.1:5060;", "Contact: <sip:a@198.18.2.1:5060>", "c=IN IP4 198.18.2.1\r\n", "o=- 1 1 IN IP4 198.18.2.1\r\n"} {
		if !strings.Contains(out[0].payload, want) {
			t.Errorf("INVITE out lacks %q:\n%s", want, out[0].payload)
		}
	}
	if m == nil || strings.Contains(out[0].payload, "IN IP4 198.18.1.10") || strings.Contains(out[0].payload, "UDP 198.18.1.10") {
		t.Fatalf("INVITE out still names the phone or has no m=:\n%s", out[0].payload)
	}
	mediaPort, _ := strconv.Atoi(m[1])

	a.fw.HandleFrame(1, udpDatagram(peerMAC, fwOutMAC, peerPhone, patAddr, 5060, out[0].src.Port(), ok200))
	back := take(t, a.in)
	if len(back) != 1 || !strings.Contains(back[0].payload, "Via: SIP/2.0/UDP 198.18.1.10:5060;") {
		t.Fatalf("200 back: %+v", back)
	}
	a.fw.HandleFrame(1, udpDatagram(peerMAC, fwOutMAC, peerPhone, patAddr, 7000, uint16(mediaPort), "rtp"))
	rtp := take(t, a.in)
	if len(rtp) != 1 || rtp[0].dst != netip.MustParseAddrPort("198.18.1.10:6000") {
		t.Fatalf("outside RTP to %d delivered as %+v, want to the phone's 6000", mediaPort, rtp)
	}
}

// TestSIPTablesReplicate: the active's SIP tables reach a standby through
// the engine table "sip" (bulk sync, then the change stream) with equal
// digests, and the standby's firewall opens the pinholes; the standby
// then passes the BYE. With sip not replicated no table is registered and
// the BYE is an unexpected request there (sip-unexpected).
func TestSIPTablesReplicate(t *testing.T) {
	a, b := newVoiceUnit(t, "fw-a"), newVoiceUnit(t, "fw-b")
	id := a.tables[len(a.tables)-1]
	if a.tableName(id) != SIPTable {
		t.Fatalf("last table is %q, want %s", a.tableName(id), SIPTable)
	}
	a.fw.HandleFrame(0, udpDatagram(phoneMAC, fwInMAC, phone, peerPhone, 5060, 5060, invite)) // before the sync
	if err := (fwStore{b.Unit}).Reset(id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (fwSource{a.Unit}).Snapshot(id, 0, func(p []byte) {
		if err := (fwStore{b.Unit}).Apply(id, replicate.OpUpsert, p); err != nil {
			t.Fatal(err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	a.sip.SetEmit(func(op replicate.Op, p []byte) { // the stream
		if err := (fwStore{b.Unit}).Apply(id, op, p); err != nil {
			t.Fatal(err)
		}
	})
	invOut := take(t, a.out)[0]
	a.fw.HandleFrame(1, udpDatagram(peerMAC, fwOutMAC, peerPhone, patAddr, 5060, invOut.src.Port(), ok200))
	var marked map[uint8]uint64
	(fwSource{a.Unit}).MarkDigests(func(d map[uint8]uint64) { marked = d })
	if got := (fwStore{b.Unit}).Digests()[id]; marked[id] == 0 || got != marked[id] {
		t.Fatalf("sip digests: active %x standby %x", marked[id], got)
	}
	if a.SIP().Len() != b.SIP().Len() || b.fw.Pinholes() != 4 {
		t.Fatalf("standby holds %v (active %v) and %d firewall pinholes, want 4", b.SIP().Len(), a.SIP().Len(), b.fw.Pinholes())
	}
	if r := b.SIP().Inspect([]byte(bye), time.Now()); !r.Pass() {
		t.Fatalf("standby drops the replicated call's BYE: %v", r.Drop)
	}

	off := newVoiceUnit(t, "fw-c", SIPTable)
	for _, tb := range off.tables {
		if off.tableName(tb) == SIPTable {
			t.Fatal("sip registered although not replicated")
		}
	}
	if r := off.SIP().Inspect([]byte(bye), time.Now()); r.Drop.String() != firewall.DropSIPUnexpected.String() {
		t.Fatalf("BYE without the call's session: %v, want sip-unexpected", r.Drop)
	}
	for sr, fr := range sipDrops {
		if sr.String() != fr.String() {
			t.Errorf("sip %v counted as firewall %v: the names differ", sr, fr)
		}
	}
	for cr, fr := range ctiqbeDrops {
		if cr.String() != fr.String() {
			t.Errorf("ctiqbe %v counted as firewall %v: the names differ", cr, fr)
		}
	}
}

// TestVoiceView: what `falab show sip`, `show service-policy inspect sip`
// and `show ctiqbe` print from the wire: the call in the ASA's words, the
// replication said plainly, and CTIQBE labelled as a lab model.
func TestVoiceView(t *testing.T) {
	for _, off := range []bool{false, true} {
		var no []string
		if off {
			no = []string{SIPTable}
		}
		a := newVoiceUnit(t, "fw-a", no...)
		a.fw.HandleFrame(0, udpDatagram(phoneMAC, fwInMAC, phone, peerPhone, 5060, 5060, invite))
		v := a.voiceView(time.Now())
		var b strings.Builder
		for _, f := range []func(io.Writer, api.Voice) error{render.ShowSIP, render.ShowSIPServicePolicy, render.ShowCTIQBE} {
			if err := f(&b, v); err != nil {
				t.Fatal(err)
			}
		}
		out := b.String()
		want := []string{"Total: 1\ncall-id call-1@198.18.1.10\n   state Call init, idle 0:00:0", "Inspect: sip , packet 1,", "lab model", "Total: 0"}
		if off {
			want = append(want, "NOT replicated")
		} else {
			want = append(want, "replicated to the standby")
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("replication off %v: output lacks %q:\n%s", off, w, out)
			}
		}
		if v.SIP.Replicated == off || len(v.SIP.Sessions) != 1 || v.SIP.Pinholes != 2 {
			t.Errorf("replication off %v: wire %+v", off, v.SIP)
		}
	}
}
