package firewall

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// bulk copies every table of from into to, chunk by chunk, as a bulk sync
// does after ResetTable.
func bulk(t *testing.T, from, to *Firewall) {
	t.Helper()
	for _, tb := range Tables {
		if err := to.ResetTable(tb); err != nil {
			t.Fatal(err)
		}
		for cur, done := uint64(0), false; !done; {
			cur, done = from.SnapshotChunk(tb, cur, 512, func(c Change) {
				if err := to.ApplyChange(c); err != nil {
					t.Fatalf("apply %s: %v", tb, err)
				}
			})
		}
	}
}

func TestSnapshotChunkAndResetGiveEqualTables(t *testing.T) {
	a := resolvedLab(t, labConfig())
	a.send(segment{true, SYN, ""})
	a.send(segment{false, SYN | ACK, ""})
	a.send(segment{true, ACK, ""})
	a.in(ifInside, udpFrame(client2.mac, fwInsideMAC, client2.ip, server.ip, 40000, 53, "q"))
	a.in(ifInside, a.tcpFrame(staticHost.mac, fwInsideMAC, staticHost.ip, server.ip, 2222, 443, SYN, ""))

	b := newLab(t, labConfig())
	// Stale state on the standby that the active no longer has.
	stale := sampleChanges()
	for _, c := range stale {
		_ = b.fw.ApplyChange(c)
	}
	bulk(t, a.fw, b.fw)
	for _, tb := range Tables {
		if da, db := a.fw.Digest(tb), b.fw.Digest(tb); da != db || da == 0 && tb != TableBridge { // no bridge table in routed mode
			t.Errorf("%s digest: active %#x, standby %#x", tb, da, db)
		}
	}
	if d := cmp.Diff(connKeys(a.fw), connKeys(b.fw)); d != "" {
		t.Errorf("conns differ (-active +standby):\n%s", d)
	}
	if a.fw.XlateCount() != b.fw.XlateCount() || a.fw.XlateCount() == 0 {
		t.Errorf("xlates: active %d, standby %d", a.fw.XlateCount(), b.fw.XlateCount())
	}
}

func TestReplicatedFilterKeepsDigestsEqual(t *testing.T) {
	noHTTP := func(c Change) bool { return c.Table != TableConn || !c.Conn.HTTP }
	cfgA := labConfig()
	a := newLab(t, cfgA)
	a.fw.replicated = noHTTP
	a.neighbour(ifInside, client)
	a.neighbour(ifInside, client2)
	a.neighbour(ifOutside, server)
	var reported []Change
	a.fw.onChange = func(c Change) { reported = append(reported, c) }
	a.send(segment{true, SYN, ""}) // port 80: HTTP, not replicated
	a.in(ifInside, udpFrame(client2.mac, fwInsideMAC, client2.ip, server.ip, 40000, 53, "q"))
	if a.fw.ConnCount() != 2 {
		t.Fatalf("active has %d conns, want 2", a.fw.ConnCount())
	}
	for _, c := range reported {
		if c.Table == TableConn && c.Conn.HTTP {
			t.Errorf("an HTTP conn was reported with HTTP replication off: %v", c.Conn.Orig)
		}
	}
	b := newLab(t, labConfig())
	b.fw.replicated = noHTTP
	bulk(t, a.fw, b.fw)
	if b.fw.ConnCount() != 1 {
		t.Errorf("standby has %d conns, want 1 (the UDP flow, not the HTTP conn)", b.fw.ConnCount())
	}
	if da, db := a.fw.Digest(TableConn), b.fw.Digest(TableConn); da != db {
		t.Errorf("conn digests differ with the filter on both: %#x vs %#x", da, db)
	}
}

// TestNotReplicatedConnsAreMarked: a connection the policy keeps off the
// state link says so in its ConnInfo (so `show conn` and the TUI mark it
// instead of calling the standby's missing copy an error), and
// UnreplicatedConnCount counts exactly those.
func TestNotReplicatedConnsAreMarked(t *testing.T) {
	a := newLab(t, labConfig())
	if n := a.fw.UnreplicatedConnCount(); n != 0 {
		t.Fatalf("no filter: %d unreplicated", n)
	}
	a.fw.replicated = func(c Change) bool { return c.Table != TableConn || !c.Conn.HTTP }
	a.neighbour(ifInside, client)
	a.neighbour(ifInside, client2)
	a.neighbour(ifOutside, server)
	a.send(segment{true, SYN, ""}) // port 80: HTTP
	a.in(ifInside, udpFrame(client2.mac, fwInsideMAC, client2.ip, server.ip, 40000, 53, "q"))
	infos, total := a.fw.Conns(0, 10)
	if total != 2 {
		t.Fatalf("%d conns, want 2", total)
	}
	for _, c := range infos {
		if c.NotReplicated != c.HTTP {
			t.Errorf("%s %s: HTTP %v but NotReplicated %v", c.Protocol, c.OrigDst, c.HTTP, c.NotReplicated)
		}
	}
	if n := a.fw.UnreplicatedConnCount(); n != 1 {
		t.Errorf("UnreplicatedConnCount %d, want 1", n)
	}
}
