package firewall

import (
	"errors"
	"io"
	"net/netip"
	"slices"
	"testing"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

func sampleChanges() []Change {
	return []Change{
		{Table: TableConn, Op: OpUpsert, Conn: ConnRecord{
			Orig:        Tuple{Proto: 6, Src: client.ip, Dst: server.ip, SrcPort: 40000, DstPort: 80},
			Reply:       Tuple{Proto: 6, Src: server.ip, Dst: outsideIP, SrcPort: 80, DstPort: 1024},
			InInterface: "inside", OutInterface: "outside", State: TCPStateFinWait, CloseFlags: CloseFinOrig,
			HTTP: true, Created: 1_700_000_000_000_000_000, LastSeen: 1_700_000_001_000_000_000,
			SeqOffset: 0x9abcdef0, Window: [2]TCPWindow{
				{End: 4000, MaxEnd: 70000, MaxWin: 65535 << 7, MaxAck: 9001, Scale: 7, Flags: TCPWinSeen | TCPWinScale | TCPWinMaxAck | TCPWinSynAcked},
				{End: 9001, MaxEnd: 0xffff_fff0, MaxWin: 1, Scale: 2, Flags: TCPWinSeen | TCPWinSACKPerm | TCPWinFinAcked},
			}}},
		{Table: TableConn, Op: OpDelete, Conn: ConnRecord{
			Orig:        Tuple{Proto: 1, Src: client.ip, Dst: server.ip, SrcPort: 7},
			Reply:       Tuple{Proto: 1, Src: server.ip, Dst: outsideIP, SrcPort: 1025},
			InInterface: "inside", OutInterface: "outside"}},
		{Table: TableXlate, Op: OpUpsert, Xlate: XlateRecord{Kind: NATDynamicPAT, Proto: 17, Real: client.ip, RealPort: 5353,
			Mapped: outsideIP, MappedPort: 1024, RealInterface: "inside", MappedInterface: "outside", Created: 42}},
		{Table: TableXlate, Op: OpUpsert, Xlate: XlateRecord{Kind: NATStatic, Real: staticHost.ip, Mapped: staticMapped,
			RealInterface: "inside", MappedInterface: "outside"}},
		{Table: TableARP, Op: OpDelete, ARP: ARPRecord{Interface: "outside", IP: server.ip, MAC: server.mac, Updated: -5}},
		{Table: TableBridge, Op: OpUpsert, Bridge: BridgeRecord{MAC: client.mac, Interface: "inside", Updated: 77}},
	}
}

func TestChangeRoundTrip(t *testing.T) {
	for _, c := range sampleChanges() {
		t.Run(c.Table.String()+"-"+c.Op.String(), func(t *testing.T) {
			b := c.AppendBinary([]byte{0xee}) // appends, leaving the prefix alone
			if b[0] != 0xee {
				t.Fatalf("AppendBinary overwrote the prefix")
			}
			got, err := ParseChange(b[1:])
			if err != nil {
				t.Fatalf("ParseChange: %v", err)
			}
			if d := cmp.Diff(c, got); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseChangeErrors(t *testing.T) {
	good := sampleChanges()[0].AppendBinary(nil)
	mut := func(i int, v byte) []byte {
		b := slices.Clone(good)
		b[i] = v
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"short body", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"trailing", append(slices.Clone(good), 0), ErrChangeTrailer},
		{"version", mut(0, 9), ErrChangeVersion},
		{"table", mut(1, 9), ErrChangeTable},
		{"op", mut(2, 0), ErrChangeOp},
		{"protocol", mut(5, 47), ErrChangeField},
		{"state", mut(5+26, 99), ErrChangeField},
		{"body length lies", mut(4, good[4]-3), ErrChangeTrailer},
		{"window scale", func() []byte {
			c := sampleChanges()[0]
			c.Conn.Window[1].Scale = 15
			return c.AppendBinary(nil)
		}(), ErrChangeField},
		{"local window flag on the wire", mut(len(good)-1, 0x80), ErrChangeField},
		{"short tracking block", func() []byte {
			b := slices.Clone(good[:len(good)-1])
			b[4]-- // body length
			return b
		}(), io.ErrUnexpectedEOF},
		{"empty interface name", func() []byte {
			c := sampleChanges()[0]
			c.Conn.InInterface = ""
			return c.AppendBinary(nil)
		}(), ErrChangeField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseChange(tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseChange error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseChangeIgnoresNewerFields(t *testing.T) {
	c := sampleChanges()[2]
	b := c.AppendBinary(nil)
	b = append(b, 1, 2, 3) // a later version's extra field
	b[4] += 3
	got, err := ParseChange(b)
	if err != nil {
		t.Fatalf("ParseChange: %v", err)
	}
	if d := cmp.Diff(c, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func FuzzParseChange(f *testing.F) {
	for _, c := range sampleChanges() {
		f.Add(c.AppendBinary(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseChange(b)
		if err != nil {
			return
		}
		again, err := ParseChange(c.AppendBinary(nil))
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
		if d := cmp.Diff(c, again); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
	})
}

// connKeys lists the replicated view of a firewall's connections.
func connKeys(fw *Firewall) []string {
	var out []string
	snapshot(fw, TableConn, func(c Change) bool {
		r := c.Conn
		out = append(out, r.Orig.String()+" "+r.Reply.String()+" "+r.InInterface+">"+r.OutInterface+" "+r.State.String())
		return true
	})
	slices.Sort(out)
	return out
}

func TestReplicationGivesEqualDigests(t *testing.T) {
	a := resolvedLab(t, labConfig())
	var stream [][]byte
	a.fw.onChange = func(c Change) { stream = append(stream, c.AppendBinary(nil)) }
	// The ARP entries learnt before the hook: bulk sync them as a new
	// standby would get them.
	b := newLab(t, labConfig())
	b.fw.SetActive(false)
	for _, tb := range Tables {
		snapshot(a.fw, tb, func(c Change) bool {
			if err := b.fw.ApplyChange(c); err != nil {
				t.Fatalf("apply snapshot %s: %v", tb, err)
			}
			return true
		})
	}
	// Traffic: an established PAT connection, a UDP flow, a ping, an
	// inbound static connection, and a connection that opens and closes.
	a.send(segment{true, SYN, ""})
	a.send(segment{false, SYN | ACK, ""})
	a.send(segment{true, ACK, ""})
	a.in(ifInside, udpFrame(client2.mac, fwInsideMAC, client2.ip, server.ip, 40000, 53, "q"))
	a.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, server.ip, header.ICMPv4Echo, 3, 1))
	a.in(ifInside, a.tcpFrame(staticHost.mac, fwInsideMAC, staticHost.ip, server.ip, 2222, 443, SYN, ""))
	a.in(ifInside, a.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 41000, 22, SYN, ""))
	a.in(ifOutside, a.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 22, 41000, RST|ACK, ""))
	a.in(ifOutside, arpFrame(header.ARPRequest, broadcastMAC, mac(77, 2), [4]byte{198, 19, 2, 77}, zeroMAC, outsideIP))

	for i, raw := range stream {
		c, err := ParseChange(raw)
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if err := b.fw.ApplyChange(c); err != nil {
			t.Fatalf("apply change %d (%s %s): %v", i, c.Table, c.Op, err)
		}
	}
	for _, tb := range Tables {
		da, db := a.fw.Digest(tb), b.fw.Digest(tb)
		if da != db || da == 0 && tb != TableBridge { // no bridge table in routed mode
			t.Errorf("%s digest: active %#x, standby %#x", tb, da, db)
		}
	}
	if d := cmp.Diff(connKeys(a.fw), connKeys(b.fw)); d != "" {
		t.Errorf("connections differ (-active +standby):\n%s", d)
	}
	if d := cmp.Diff(a.fw.ARPEntries(), b.fw.ARPEntries(), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); d != "" {
		t.Errorf("ARP tables differ (-active +standby):\n%s", d)
	}

	// Takeover: the standby carries the established connection both ways.
	b.fw.SetActive(true)
	out := b.send(segment{false, ACK | PSH, ""})
	p := decode(t, only(t, out, ifInside, 1)[0])
	if p.Dst != ap(client.ip, 40000) || p.EthDst != macStr(client.mac[:]) {
		t.Errorf("after takeover, server->client: %+v", p)
	}
	out = b.send(segment{true, ACK | PSH, ""})
	if p := decode(t, only(t, out, ifOutside, 1)[0]); p.Src != ap(outsideIP, 40000) {
		t.Errorf("after takeover, client->server: %+v", p)
	}
	if d := cmp.Diff(map[string]uint64{}, b.drops()); d != "" {
		t.Errorf("standby drops after takeover (-want +got):\n%s", d)
	}

	// A digest notices a difference.
	before := b.fw.Digest(TableConn)
	b.fw.ApplyChange(Change{Table: TableConn, Op: OpDelete, Conn: ConnRecord{Orig: Tuple{Proto: 17, Src: client2.ip, Dst: server.ip, SrcPort: 40000, DstPort: 53}}})
	if b.fw.Digest(TableConn) == before {
		t.Errorf("deleting a connection did not change the digest")
	}
}

func TestApplyChangeRejectsUnknownInterface(t *testing.T) {
	l := newLab(t, labConfig())
	c := sampleChanges()[0]
	c.Conn.InInterface = "dmz2"
	if err := l.fw.ApplyChange(c); err == nil {
		t.Errorf("ApplyChange accepted a connection on an unknown interface")
	}
	a := Change{Table: TableARP, Op: OpUpsert, ARP: ARPRecord{Interface: "nope", IP: client.ip}}
	if err := l.fw.ApplyChange(a); err == nil {
		t.Errorf("ApplyChange accepted an ARP entry on an unknown interface")
	}
}

func TestDigestsLockedHoldsOffChanges(t *testing.T) {
	l := resolvedLab(t, labConfig())
	var seen map[Table]uint64
	l.fw.DigestsLocked(func(m map[Table]uint64) { seen = m })
	if seen[TableARP] == 0 || seen[TableXlate] == 0 || seen[TableConn] != 0 {
		t.Errorf("digests = %v, want ARP and xlate set, conn zero", seen)
	}
}
