package unit

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/falab/falab/firewall"
	"github.com/falab/falab/replicate"
)

func testConfig(httpRepl bool) *Config {
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0xfa, 0, 0, 0, b} }
	return &Config{
		Name: "fw-a", Peer: "fw-b", Role: "primary", HTTPReplication: httpRepl,
		Firewall: firewall.Config{Interfaces: []firewall.InterfaceConfig{
			{Name: "inside", SecurityLevel: 100, Prefix: netip.MustParsePrefix("198.18.1.1/24"), StandbyAddr: netip.MustParseAddr("198.18.1.2"), ActiveMAC: mac(1), StandbyMAC: mac(2)},
			{Name: "outside", SecurityLevel: 0, Prefix: netip.MustParsePrefix("198.18.2.1/24"), StandbyAddr: netip.MustParseAddr("198.18.2.2"), ActiveMAC: mac(3), StandbyMAC: mac(4)},
		}},
		UnitPoll: 20 * time.Millisecond, UnitHold: 100 * time.Millisecond,
		InterfacePoll: time.Millisecond, InterfaceHold: 5 * time.Millisecond, NegotiationWindow: 100 * time.Millisecond,
	}
}

// activeAndStandby returns two units of testConfig, fw-a's data plane
// active, not started: the tests drive their firewalls directly.
func activeAndStandby(t *testing.T, httpRepl bool) (a, b *Unit) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	a, err := New(testConfig(httpRepl), testKey(7), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	cfgB := testConfig(httpRepl)
	cfgB.Name, cfgB.Peer, cfgB.Role = "fw-b", "fw-a", "secondary"
	if b, err = New(cfgB, testKey(7), nil, log); err != nil {
		t.Fatal(err)
	}
	a.fw.SetActive(true)
	return a, b
}

// stream replicates a to b through the unit's Source and Store adapters
// and the real sender (cfg, with key, source and tables filled in) and
// receiver, over a pipe, until the test ends.
func stream(t *testing.T, a, b *Unit, cfg replicate.SenderConfig) (*replicate.Sender, *replicate.Receiver) {
	t.Helper()
	cfg.Key, cfg.Source, cfg.Tables = a.key, fwSource{a}, a.tables
	s, err := replicate.NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.sender.Store(s)
	r, err := replicate.NewReceiver(replicate.ReceiverConfig{Key: b.key, Store: fwStore{b}})
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := net.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Serve(c1) })
	wg.Go(func() { _ = r.Serve(c2) })
	t.Cleanup(func() { s.Close(); r.Close(); wg.Wait() })
	return s, r
}

// conn makes a UDP (or, with port 80, an HTTP) connection record from an
// inside host through PAT.
func conn(i int, dport uint16) firewall.Change {
	src := [4]byte{198, 18, 1, byte(10 + i%200)}
	dst := [4]byte{198, 18, 2, 11}
	proto, state := uint8(17), firewall.TCPStateNone
	if dport == 80 {
		proto, state = 6, firewall.TCPStateEstablished
	}
	sport := uint16(10000 + i)
	return firewall.Change{Table: firewall.TableConn, Op: firewall.OpUpsert, Conn: firewall.ConnRecord{
		Orig:        firewall.Tuple{Proto: proto, Src: src, Dst: dst, SrcPort: sport, DstPort: dport},
		Reply:       firewall.Tuple{Proto: proto, Src: dst, Dst: [4]byte{198, 18, 2, 1}, SrcPort: dport, DstPort: sport},
		InInterface: "inside", OutInterface: "outside", HTTP: dport == 80,
		State: state,
	}}
}

// TestReplicationThroughUnitAdapters streams a firewall's tables to
// another through the unit's Source and Store adapters and the real
// replicate sender and receiver, while changes race the bulk sync, and
// ends with equal digests; HTTP connections stay on the active when HTTP
// replication is off.
func TestReplicationThroughUnitAdapters(t *testing.T) {
	for _, httpRepl := range []bool{false, true} {
		t.Run(map[bool]string{false: "http replication off", true: "http replication on"}[httpRepl], func(t *testing.T) {
			a, b := activeAndStandby(t, httpRepl)
			for i := 0; i < 1500; i++ {
				dport := uint16(53)
				if i%10 == 0 {
					dport = 80
				}
				if err := a.fw.ApplyChange(conn(i, dport)); err != nil {
					t.Fatal(err)
				}
			}
			s, _ := stream(t, a, b, replicate.SenderConfig{QueueLimit: 1 << 18})
			// Changes racing the bulk sync: new conns, and deletes of old ones,
			// from the moment the session is up.
			for !s.Stats().Connected {
				time.Sleep(100 * time.Microsecond)
			}
			for i := 1500; i < 3000; i++ {
				if err := a.fw.ApplyChange(conn(i, 53)); err != nil {
					t.Fatal(err)
				}
				del := conn(i-1500, 53)
				del.Op = firewall.OpDelete
				if err := a.fw.ApplyChange(del); err != nil {
					t.Fatal(err)
				}
			}
			want := map[uint8]uint64{}
			deadline := time.Now().Add(10 * time.Second)
			for {
				fwSource{a}.MarkDigests(func(d map[uint8]uint64) { want = d })
				got := fwStore{b}.Digests()
				equal := len(got) == len(want)
				for k, v := range want {
					equal = equal && got[k] == v
				}
				if equal && b.fw.ConnCount() > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("digests never matched: active %v, standby %v (conns %d vs %d)", want, got, a.fw.ConnCount(), b.fw.ConnCount())
				}
				time.Sleep(5 * time.Millisecond)
			}
			wantB := a.fw.ConnCount()
			if !httpRepl {
				wantB -= 150
			}
			if got := b.fw.ConnCount(); got != wantB {
				t.Errorf("standby holds %d conns, want %d (active %d, HTTP replication %v)", got, wantB, a.fw.ConnCount(), httpRepl)
			}
		})
	}
}

// TestShortConnsCoalesced: connections that open and close within one
// replication batch reach the standby as nothing at all, those still open
// as one record each, and the standby's digests still match. The writer
// is held back (an hour's flush interval) so that the batch is the whole
// burst; only the digest marker flushes it.
func TestShortConnsCoalesced(t *testing.T) {
	a, b := activeAndStandby(t, false)
	s, r := stream(t, a, b, replicate.SenderConfig{FlushInterval: time.Hour})
	// Synced: the bulk's closing marker was written, so nothing urgent
	// waits in the queue to flush it early.
	for !r.Stats().Synced {
		time.Sleep(100 * time.Microsecond)
	}

	const n = 400 // 600 records, under one 64 KB batch
	for i := range n {
		if err := a.fw.ApplyChange(conn(i, 53)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			del := conn(i, 53)
			del.Op = firewall.OpDelete
			if err := a.fw.ApplyChange(del); err != nil {
				t.Fatal(err)
			}
		}
	}
	fwSource{a}.MarkDigests(s.MarkDigest)
	waitUntil(t, 10*time.Second, "the standby's digests match", func() (bool, string) {
		var want map[uint8]uint64
		fwSource{a}.MarkDigests(func(d map[uint8]uint64) { want = d })
		got := fwStore{b}.Digests()
		return maps.Equal(got, want) && b.fw.ConnCount() == n/2, fmt.Sprintf("active %v, standby %v, standby conns %d", want, got, b.fw.ConnCount())
	})
	var ts replicate.TableStats
	for _, x := range s.Stats().Tables {
		if x.Table == uint8(firewall.TableConn) {
			ts = x
		}
	}
	// Each short conn: its upsert and its delete coalesced.
	if ts.Sent != n/2 || ts.Coalesced != n || ts.Queued != ts.Sent+ts.Coalesced {
		t.Errorf("conn table: queued %d, sent %d, coalesced %d; want sent %d, coalesced %d", ts.Queued, ts.Sent, ts.Coalesced, n/2, n)
	}
}
