package unit

import (
	"testing"

	"github.com/falab/falab/ctiqbe"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/replicate"
)

// manager is the CallManager, outside.
var manager = peerPhone

// tcpSegment builds a TCP segment with the given numbers.
func tcpSegment(ethSrc, ethDst [6]byte, src, dst [4]byte, sport, dport uint16, flags uint8, seq, ack uint32, payload []byte) []byte {
	b := make([]byte, header.EthernetLen+header.IPv4MinimumSize+header.TCPMinimumSize+len(payload))
	e := header.Ethernet(b)
	e.SetDestination(ethDst[:])
	e.SetSource(ethSrc[:])
	e.SetEtherType(header.EtherTypeIPv4)
	ip := header.IPv4(e.Payload())
	ip.SetVersionAndHeaderLength(header.IPv4MinimumSize)
	ip.SetTotalLength(uint16(len(ip)))
	ip.SetTTL(64)
	ip.SetProtocol(header.ProtocolTCP)
	ip.SetSourceAddress(src)
	ip.SetDestinationAddress(dst)
	ip.SetChecksum(ip.CalculateChecksum())
	t := header.TCP(ip.Payload())
	t.SetSourcePort(sport)
	t.SetDestinationPort(dport)
	t.SetSequenceNumber(seq)
	t.SetAckNumber(ack)
	t.SetDataOffset(header.TCPMinimumSize)
	t.SetFlags(flags)
	t.SetWindowSize(65535)
	copy(t[header.TCPMinimumSize:], payload)
	t.SetChecksum(t.CalculateChecksum(src, dst))
	return b
}

func ctiqbeBytes(t *testing.T, m ctiqbe.Message) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCTIQBENotReplicated plays the mission's story on two units' data
// planes: the phone registers and calls through the active, whose engine
// opens the call's pinholes; the connections reach the standby (they are
// ordinary connections) but the CTIQBE session table does not, so on the
// standby made active the hang-up is dropped as ctiqbe-no-session, while
// on the unit that saw the call it passes.
func TestCTIQBENotReplicated(t *testing.T) {
	a, b := newVoiceUnit(t, "fw-a"), newVoiceUnit(t, "fw-b")
	for _, id := range a.tables {
		if n := a.tableName(id); n != SIPTable && id >= firstEngineTable {
			t.Errorf("engine table %q registered; CTIQBE must register none", n)
		}
	}
	const (
		pISN, mISN = 1000, 5000
		syn, ack   = header.TCPFlagSYN, header.TCPFlagACK
	)
	phoneSeq, mgrSeq := uint32(pISN+1), uint32(mISN+1)
	var mapped uint16
	var offset uint32 // the firewall's sequence randomization of the phone's side
	fromPhone := func(u *voiceUnit, m ctiqbe.Message) {
		p := ctiqbeBytes(t, m)
		u.fw.HandleFrame(0, tcpSegment(phoneMAC, fwInMAC, phone, manager, 41000, CTIQBEPort, ack|header.TCPFlagPSH, phoneSeq, mgrSeq, p))
	}
	a.fw.HandleFrame(0, tcpSegment(phoneMAC, fwInMAC, phone, manager, 41000, CTIQBEPort, syn, pISN, 0, nil))
	for _, fr := range a.out.Take() {
		seg := header.TCP(header.IPv4(header.Ethernet(fr).Payload()).Payload())
		mapped, offset = seg.SourcePort(), seg.SequenceNumber()-pISN
	}
	a.fw.HandleFrame(1, tcpSegment(peerMAC, fwOutMAC, manager, patAddr, CTIQBEPort, mapped, syn|ack, mISN, pISN+1+offset, nil))
	a.fw.HandleFrame(0, tcpSegment(phoneMAC, fwInMAC, phone, manager, 41000, CTIQBEPort, ack, phoneSeq, mgrSeq, nil))
	fromMgr := func(m ctiqbe.Message) {
		p := ctiqbeBytes(t, m)
		a.fw.HandleFrame(1, tcpSegment(peerMAC, fwOutMAC, manager, patAddr, CTIQBEPort, mapped, ack|header.TCPFlagPSH, mgrSeq, phoneSeq+offset, p))
		mgrSeq += uint32(len(p))
	}
	say := func(m ctiqbe.Message) {
		fromPhone(a, m)
		phoneSeq += uint32(len(ctiqbeBytes(t, m)))
	}
	say(ctiqbe.Message{Type: ctiqbe.TypeRegister, TxID: 1, Device: "SEP-falab"})
	fromMgr(ctiqbe.Message{Type: ctiqbe.TypeRegisterAck, TxID: 1, DeviceID: 27, Heartbeat: 120})
	say(ctiqbe.Message{Type: ctiqbe.TypeMakeCall, TxID: 2, Number: "1000", MediaAddr: phone, MediaPort: 26822})
	fromMgr(ctiqbe.Message{Type: ctiqbe.TypeCallSetup, TxID: 2, CallID: 7, MediaAddr: manager, MediaPort: 16384})
	say(ctiqbe.Message{Type: ctiqbe.TypeCallSetupAck, TxID: 3, CallID: 7})
	if d := a.fw.Drops(); len(d) != 0 {
		t.Fatalf("the call's setup was dropped: %v", d)
	}
	if n := len(a.CTIQBE().Sessions()); n != 1 || a.fw.Pinholes() == 0 {
		t.Fatalf("active: %d CTIQBE sessions, %d pinholes; want 1 and the call's", n, a.fw.Pinholes())
	}

	// The connections (and xlates) reach the standby; CTIQBE's table does not.
	for _, tb := range []firewall.Table{firewall.TableXlate, firewall.TableConn} {
		for cursor, done := uint64(0), false; !done; {
			var err error
			cursor, done, err = (fwSource{a.Unit}).Snapshot(uint8(tb), cursor, func(p []byte) {
				if err := (fwStore{b.Unit}).Apply(uint8(tb), replicate.OpUpsert, p); err != nil {
					t.Fatal(err)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if b.fw.ConnCount() != a.fw.ConnCount() {
		t.Fatalf("standby has %d connections, the active %d", b.fw.ConnCount(), a.fw.ConnCount())
	}
	if n := len(b.CTIQBE().Sessions()); n != 0 {
		t.Fatalf("standby holds %d CTIQBE sessions; the table must not be replicated", n)
	}
	hangUp := ctiqbe.Message{Type: ctiqbe.TypeHangUp, TxID: 5, CallID: 7}
	fromPhone(b, hangUp)
	if d := b.fw.Drops(); d[firewall.DropCTIQBENoSession] != 1 {
		t.Fatalf("new active's drops %v, want the hang-up as ctiqbe-no-session", d)
	}
	fromPhone(a, hangUp)
	if d := a.fw.Drops(); len(d) != 0 {
		t.Fatalf("the unit with the session dropped the hang-up: %v", d)
	}
}
