package firewall

import (
	"context"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
)

// TestARPPort: with an ARP port attached, ARP is answered from it, and the
// copy of the same frame that the data port also receives is ignored (not
// answered twice, not counted as a drop).
func TestARPPort(t *testing.T) {
	cfg := labConfig()
	fw, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fwData, hostData := memport.Pair(64)
	fwARP, _ := memport.Pair(64)
	if err := fw.Attach(cfg.Interfaces[ifInside].Name, fwData); err != nil {
		t.Fatal(err)
	}
	if err := fw.AttachARP(cfg.Interfaces[ifInside].Name, fwARP); err != nil {
		t.Fatal(err)
	}
	fw.SetActive(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	req := arpFrame(header.ARPRequest, broadcastMAC, client.mac, client.ip, zeroMAC, fw.ifs[ifInside].addr)
	fwData.Inject(req) // the data ring's copy: ignored
	fwARP.Inject(req)  // the ARP socket's copy: answered
	bufs, sizes := [][]byte{make([]byte, 2048), make([]byte, 2048)}, []int{0, 0}
	n, err := hostData.ReadBatch(bufs, sizes)
	if err != nil || n != 1 {
		t.Fatalf("read %d frames, err %v; want the one reply", n, err)
	}
	a := header.ARP(header.Ethernet(bufs[0][:sizes[0]]).Payload())
	if a.Op() != header.ARPReply || [4]byte(a.TargetProtocolAddress()) != client.ip {
		t.Errorf("got op %d to %v, want a reply to the client", a.Op(), a.TargetProtocolAddress())
	}
	if n, _ := readNow(hostData); n != 0 {
		t.Errorf("%d more frames: the data port's copy was answered too", n)
	}
	if d := fw.Drops(); len(d) != 0 {
		t.Errorf("drops %v, want none", d)
	}
}

// readNow reads what reaches p within 10 ms (a bound on a negative: a
// second answer would be written at once), then closes p.
func readNow(p *memport.Port) (int, error) {
	done := make(chan int, 1)
	go func() {
		bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
		n, _ := p.ReadBatch(bufs, sizes)
		done <- n
	}()
	select {
	case n := <-done:
		return n, nil
	case <-time.After(10 * time.Millisecond):
		p.Close()
		<-done
		return 0, nil
	}
}

// TestAttachARPRefusedInTransparentMode: a bridge must keep ARP in order
// with the data it bridges.
func TestAttachARPRefusedInTransparentMode(t *testing.T) {
	cfg := transparentConfig()
	fw, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := memport.Pair(1)
	if err := fw.AttachARP(cfg.Interfaces[0].Name, p); err == nil {
		t.Error("AttachARP accepted in transparent mode")
	}
}
