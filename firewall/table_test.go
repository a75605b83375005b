package firewall

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
)

func TestConnsPaging(t *testing.T) {
	l := resolvedLab(t, labConfig())
	const n = 300
	for i := range n {
		l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 10000+uint16(i), 53, "q"))
	}
	seen := map[string]bool{}
	for off := 0; ; off += 7 {
		page, total := l.fw.Conns(off, 7)
		if total != n {
			t.Fatalf("total = %d, want %d", total, n)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 7 {
			t.Fatalf("page of %d entries, limit 7", len(page))
		}
		for _, c := range page {
			if seen[c.OrigSrc] {
				t.Fatalf("%s listed twice", c.OrigSrc)
			}
			seen[c.OrigSrc] = true
		}
	}
	if len(seen) != n {
		t.Errorf("paged through %d conns, want %d", len(seen), n)
	}
	xl, total := l.fw.Xlates(n-2, 10)
	if total != n+1 || len(xl) != 3 {
		t.Errorf("Xlates(%d, 10) = %d entries of %d, want 3 of %d", n-2, len(xl), total, n+1)
	}
}

// TestConcurrentUse runs the packet path from two goroutines while
// maintenance, snapshots and listings run, for the race detector.
func TestConcurrentUse(t *testing.T) {
	l := resolvedLab(t, labConfig())
	var changes atomic.Int64
	l.fw.onChange = func(Change) { changes.Add(1) }
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := range 2000 {
				sport := uint16(20000 + g*5000 + i%500)
				l.fw.HandleFrame(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, sport, 53, "q"))
				l.fw.HandleFrame(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 53, sport, "a"))
				if i%100 == 0 {
					l.fw.HandleFrame(ifInside, tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, sport, 80, header.TCPFlagSYN, ""))
					l.fw.HandleFrame(ifOutside, tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, sport, header.TCPFlagRST|header.TCPFlagACK, ""))
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			l.clk.Advance(10 * time.Second)
			l.fw.Maintain()
			snapshot(l.fw, TableConn, func(Change) bool { return true })
			l.fw.Conns(0, 10)
			l.fw.Xlates(0, 10)
			l.fw.ARPEntries()
			l.fw.DigestsLocked(func(map[Table]uint64) {})
		}
	})
	wg.Wait()
	if changes.Load() == 0 {
		t.Error("the concurrent run recorded no change")
	}
	for _, p := range l.ports {
		p.Take()
	}
}
