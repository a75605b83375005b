package unit

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/falab/falab/esp"
	"github.com/falab/falab/fwconfig"
	"github.com/falab/falab/ike"
	"github.com/falab/falab/replicate"
)

func vpnTestUnit(t *testing.T, name string, noRepl bool) *Unit {
	t.Helper()
	cfg := testConfig(false)
	cfg.Name = name
	cfg.LocalAddr, cfg.PeerAddr = netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1")
	cfg.NoIPsecReplication = noRepl
	cfg.Firewall.CryptoMaps = []fwconfig.CryptoMap{{Name: "outside_map", Seq: 10, Interface: "outside", Peer: netip.MustParseAddr("198.18.2.50"),
		PreSharedKey: "k", IKEv2Policies: []fwconfig.IKEv2Policy{{Encryption: "aes-gcm-256", Group: 19}}, IPsecProposal: []string{"aes-gcm"},
		MatchAddress: []fwconfig.CryptoACE{{Source: netip.MustParsePrefix("198.18.1.0/24"), Destination: netip.MustParsePrefix("198.19.20.0/24")}}}}
	u, err := New(cfg, testKey(1), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// testIKERecord is an established IKE SA with one child, as the active's
// responder would export it.
func testIKERecord() ike.Record {
	k := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	sel := func(from, to string) []ike.Selector {
		return []ike.Selector{{Start: netip.MustParseAddr(from), End: netip.MustParseAddr(to), EndPort: 65535}}
	}
	return ike.Record{SPIi: 0x1111, SPIr: 0x2222, Suite: ike.Suite{Encr: ike.EncrAESGCM16, KeyBits: 256, PRF: ike.PRFHMACSHA256, DH: ike.DHECP256},
		SKd: k(32, 1), SKei: k(36, 2), SKer: k(36, 3), SKpi: k(32, 4), SKpr: k(32, 5),
		Local: netip.MustParseAddrPort("198.18.2.1:4500"), Peer: netip.MustParseAddrPort("198.18.2.50:4500"), NextMessageID: 5,
		Children: []ike.ChildRecord{{InSPI: 0xc1000001, OutSPI: 0xd2000002, Suite: ike.ChildSuite{Encr: ike.EncrAESGCM16, KeyBits: 128},
			InKey: k(16, 6), InSalt: k(4, 7), OutKey: k(16, 8), OutSalt: k(4, 9),
			LocalTS: sel("198.18.1.0", "198.18.1.255"), RemoteTS: sel("198.19.20.0", "198.19.20.255")}}}
}

// TestIPsecTableTakeover: the active's IKE SA, lease and replay records
// reach the standby through a bulk sync with equal digests; the standby's
// responder holds the SA (so it answers the next request), and its
// takeover installs the child in the data plane starting at the leased
// limit and above the synced replay top. A delete removes the SA.
func TestIPsecTableTakeover(t *testing.T) {
	a, b := vpnTestUnit(t, "fw-a", false), vpnTestUnit(t, "fw-b", false)
	if len(a.engines) != 1 || a.engines[0].Name() != "ipsec-sa" {
		t.Fatalf("engine tables %v", a.engines)
	}
	rec := testIKERecord()
	e := a.vpn
	e.mu.Lock()
	if err := e.maps[0].resp.Import(rec); err != nil {
		t.Fatal(err)
	}
	e.syncSALocked(e.maps[0], rec.SPIr)
	in := rec.Children[0].InSPI
	e.storeLocked(string(childKey('L', in)), binary.BigEndian.AppendUint64(childKey('L', in), 70000), true)
	// The active's data plane holds the child with a window: received
	// 4242 (the top), 4240 and 4000; the tick's sync makes it a record.
	w, _ := esp.NewWindow(1024)
	for _, s := range []uint32{4000, 4240, 4242} {
		w.Accept(s)
	}
	fsa := e.childSA(e.maps[0], rec.Children[0], rec.Peer, 1, 4242)
	fsa.ReplayBitmap = w.Snapshot(nil)
	if err := a.fw.InstallIPsecSA(fsa); err != nil {
		t.Fatal(err)
	}
	e.syncReplayLocked(in)
	e.mu.Unlock()

	id := a.engines[0].id
	if err := (fwStore{b}).Reset(id); err != nil {
		t.Fatal(err)
	}
	if _, done, err := (fwSource{a}).Snapshot(id, 0, func(p []byte) {
		if err := (fwStore{b}).Apply(id, replicate.OpUpsert, p); err != nil {
			t.Fatal(err)
		}
	}); err != nil || !done {
		t.Fatalf("snapshot: %v %v", done, err)
	}
	var marked map[uint8]uint64
	fwSource{a}.MarkDigests(func(d map[uint8]uint64) { marked = d })
	if mine := (fwStore{b}).Digests(); marked[id] == 0 || mine[id] != marked[id] {
		t.Fatalf("ipsec-sa digests: active %x standby %x", marked[id], mine[id])
	}
	if sa := b.vpn.maps[0].resp.SA(rec.SPIr); sa == nil || !sa.Established() || sa.Export().NextMessageID != 5 {
		t.Fatal("the standby's responder does not hold the IKE SA with its message ID")
	}
	if n := b.vpn.takeover(); n != 1 {
		t.Fatalf("takeover installed %d child SAs, want 1", n)
	}
	topA, wordsA, _ := a.fw.IPsecReplayWindow(in, nil)
	topB, wordsB, _ := b.fw.IPsecReplayWindow(in, nil)
	if topB != topA || !slices.Equal(wordsA, wordsB) {
		t.Errorf("replay window after takeover: top %d %x, the active's %d %x", topB, wordsB, topA, wordsA)
	}
	sas := b.fw.IPsecSAs()
	if len(sas) != 1 || sas[0].InSPI != in || sas[0].OutSPI != 0xd2000002 || sas[0].NextSeq != 70000 || sas[0].ReplayTop != 4242 ||
		sas[0].Peer != rec.Peer {
		t.Fatalf("installed at takeover: %+v", sas)
	}
	// Alone now (no sender): the first lease is granted by the takeover
	// itself, above the old limit, so nothing waits for the lease loop.
	if sas := b.fw.IPsecSAs(); sas[0].LeaseLimit != 70000+leaseBlock {
		t.Errorf("lease after takeover %d, want %d", sas[0].LeaseLimit, 70000+leaseBlock)
	}
	if err := (fwStore{b}).Apply(id, replicate.OpDelete, saKey(b.vpn.maps[0], rec.SPIr)); err != nil {
		t.Fatal(err)
	}
	if b.vpn.maps[0].resp.SA(rec.SPIr) != nil || len(b.vpn.IKESAs()) != 0 {
		t.Error("a delete left the IKE SA")
	}
	for _, bad := range [][]byte{nil, {'S', 0}, {'L', 0, 0, 0, 1}, {'X', 1, 2, 3, 4}, {'R', 0, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3}} {
		if err := (fwStore{b}).Apply(id, replicate.OpUpsert, bad); err == nil {
			t.Errorf("malformed record %x accepted", bad)
		}
	}
}

// TestIPsecReplicationOff: the negative control's knob keeps the table off
// the state link.
func TestIPsecReplicationOff(t *testing.T) {
	if u := vpnTestUnit(t, "fw-a", true); len(u.engines) != 0 || u.vpn == nil {
		t.Fatalf("replication off: %d engine tables, engine %v", len(u.engines), u.vpn != nil)
	}
}

// TestMIDSyncRetransmits: an unanswered RFC 6311 sync request is sent
// again after 0.5, 1 and 2 s (the same datagram, as an IKE retransmission),
// then given up; nothing is due in between.
func TestMIDSyncRetransmits(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var r retransmits
	r.sentAt(t0) // the first send
	var sends []time.Duration
	for ms := 0; ms <= 10_000; ms++ {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		resend, giveUp := r.due(now)
		if giveUp {
			if want := []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond}; !slices.Equal(sends, want) {
				t.Errorf("resent at %v, want %v", sends, want)
			}
			if at := now.Sub(t0); at != 7500*time.Millisecond {
				t.Errorf("gave up at %v, want 7.5 s (4 s after the last resend)", at)
			}
			return
		}
		if resend {
			sends = append(sends, now.Sub(t0))
			r.sentAt(now)
		}
	}
	t.Fatalf("never gave up; resent at %v", sends)
}
