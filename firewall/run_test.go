package firewall

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
	"github.com/google/go-cmp/cmp"
)

// readOne reads one frame from p, failing the test if none arrives within
// a generous deadline (a guard against hanging, not a timing assertion).
func readOne(t *testing.T, p *memport.Port) []byte {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		bufs := [][]byte{make([]byte, MaxFrameSize)}
		sizes := []int{0}
		n, err := p.ReadBatch(bufs, sizes)
		if n == 1 {
			ch <- res{b: bufs[0][:sizes[0]]}
			return
		}
		ch <- res{err: err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read: %v", r.err)
		}
		return r.b
	case <-time.After(10 * time.Second):
		t.Fatalf("no frame within 10s")
		return nil
	}
}

func TestRunForwardsBetweenPorts(t *testing.T) {
	cfg := labConfig()
	fw, err := New(cfg, Options{Clock: NewManualClock(epoch)})
	if err != nil {
		t.Fatal(err)
	}
	var hosts []*memport.Port
	for _, ic := range cfg.Interfaces {
		fwSide, hostSide := memport.Pair(256)
		if err := fw.Attach(ic.Name, fwSide); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, hostSide)
	}
	fw.SetActive(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()

	hosts[ifInside].WriteBatch([][]byte{arpFrame(header.ARPRequest, broadcastMAC, client.mac, client.ip, zeroMAC, insideIP)})
	if p := decode(t, readOne(t, hosts[ifInside])); p.ARPOp != header.ARPReply {
		t.Fatalf("want ARP reply, got %+v", p)
	}
	hosts[ifOutside].WriteBatch([][]byte{arpFrame(header.ARPRequest, broadcastMAC, server.mac, server.ip, zeroMAC, outsideIP)})
	readOne(t, hosts[ifOutside])
	hosts[ifInside].WriteBatch([][]byte{udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5000, 53, "hello")})
	got := decode(t, readOne(t, hosts[ifOutside]))
	want := pkt{EthSrc: macStr(fwOutsideMAC[:]), EthDst: macStr(server.mac[:]), Type: "udp",
		Src: ap(outsideIP, 5000), Dst: ap(server.ip, 53), TTL: 63, Payload: "hello"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("forwarded (-want +got):\n%s", d)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := hosts[ifInside].WriteBatch(nil); err != nil {
		t.Errorf("host side closed too: %v", err)
	}
	if err := fw.Run(context.Background()); err == nil {
		t.Errorf("second Run succeeded")
	}
}

// failingPort fails its first read.
type failingPort struct{ *memport.Discard }

func (failingPort) ReadBatch([][]byte, []int) (int, error) { return 0, errors.New("link gone") }

func TestRunReturnsPortError(t *testing.T) {
	fw, err := New(labConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	fw.Attach("inside", failingPort{memport.NewDiscard()})
	fw.Attach("outside", memport.NewDiscard())
	err = fw.Run(context.Background())
	if err == nil || err.Error() != "interface inside: link gone" {
		t.Errorf("Run = %v, want the inside port's error", err)
	}
}

func TestControlFrames(t *testing.T) {
	l := newLab(t, labConfig())
	l.fw.SetActive(false)
	type got struct {
		Iface   string
		Payload string
	}
	var gots []got
	l.fw.SetControlHandler(EtherTypeFailover, func(iface string, _ [6]byte, payload []byte) {
		gots = append(gots, got{iface, string(payload)})
	})
	fr := make([]byte, header.EthernetLen+5)
	e := header.Ethernet(fr)
	e.SetDestination(broadcastMAC[:])
	src := mac(1, 9)
	e.SetSource(src[:])
	e.SetEtherType(EtherTypeFailover)
	copy(e.Payload(), "hello")
	nothing(t, l.in(ifOutside, fr))
	if d := cmp.Diff([]got{{"outside", "hello"}}, gots); d != "" {
		t.Errorf("control frames (-want +got):\n%s", d)
	}
	peer := mac(2, 9)
	if err := l.fw.SendControl("inside", peer[:], EtherTypeFailover, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	out := only(t, l.take(), ifInside, 1)[0]
	oe := header.Ethernet(out)
	if macStr(oe.Source()) != macStr(fwInsideSbMAC[:]) || macStr(oe.Destination()) != macStr(peer[:]) ||
		oe.EtherType() != EtherTypeFailover || string(oe.Payload()) != "hi" {
		t.Errorf("sent control frame % x", out)
	}
	if err := l.fw.SendControl("nope", peer[:], EtherTypeFailover, nil); err == nil {
		t.Errorf("SendControl on an unknown interface succeeded")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		mut  func(c *Config)
	}{
		{"no interfaces", func(c *Config) { c.Interfaces = nil }},
		{"duplicate name", func(c *Config) { c.Interfaces[1].Name = "inside" }},
		{"short MAC", func(c *Config) { c.Interfaces[0].ActiveMAC = c.Interfaces[0].ActiveMAC[:5] }},
		{"standby off net", func(c *Config) { c.Interfaces[0].StandbyAddr = addr("198.19.9.9") }},
		{"route next hop off net", func(c *Config) { c.Routes[0].NextHop = addr("198.18.1.254") }},
		{"route unknown interface", func(c *Config) { c.Routes[0].Interface = "wan" }},
		{"static not a host", func(c *Config) { c.NAT[0].Real = pfx("198.18.1.0/24") }},
		{"empty PAT range", func(c *Config) { c.NAT[1].PortLow, c.NAT[1].PortHigh = 2000, 1000 }},
		{"static reuses interface address", func(c *Config) { c.NAT[0].Mapped = addr("198.19.2.1") }},
		{"bad ACL protocol", func(c *Config) {
			c.AccessLists = map[string][]ACE{"a": {{Protocol: "sctp"}}}
		}},
		{"unknown ACL", func(c *Config) { c.AccessGroups = []AccessGroup{{AccessList: "missing", Interface: "outside"}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := labConfig()
			tt.mut(&cfg)
			if _, err := New(cfg, Options{}); !errors.Is(err, errConfig) {
				t.Errorf("New = %v, want a config error", err)
			}
		})
	}
}

func FuzzHandleFrame(f *testing.F) {
	f.Add(uint8(ifInside), tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, SYN, ""))
	f.Add(uint8(ifOutside), tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, ACK, "x"))
	f.Add(uint8(ifInside), udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5000, 53, "q"))
	f.Add(uint8(ifInside), icmpFrame(client.mac, fwInsideMAC, client.ip, insideIP, header.ICMPv4Echo, 1, 1))
	f.Add(uint8(ifOutside), arpFrame(header.ARPRequest, broadcastMAC, server.mac, server.ip, zeroMAC, staticMapped))
	f.Add(uint8(ifInside), withTTL(udpFrame(client.mac, fwInsideMAC, client.ip, farServer, 1, 2, ""), 1))
	f.Add(uint8(ifOutside), icmpErrorFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, header.ICMPv4DstUnreachable, 3,
		tcpFrame(fwOutsideMAC, server.mac, outsideIP, server.ip, 40000, 80, SYN, "")))
	f.Fuzz(func(t *testing.T, ingress uint8, input []byte) {
		frame := append([]byte(nil), input...) // the path rewrites frames in place
		l := resolvedLab(t, labConfig())
		l.send(segment{true, SYN, ""})
		l.take()
		in := int(ingress % 4) // 3 is out of range on purpose
		before := l.fw.Drops()
		w := l.fw.workers.Get().(*worker)
		w.now = l.fw.now()
		r := w.handle(in, frame)
		w.flush()
		after := l.fw.Drops()
		if r != dropNone && after[r] != before[r]+1 {
			t.Fatalf("verdict %s not counted: before %d after %d", r, before[r], after[r])
		}
		// An unusable IPv4 header is always a counted drop.
		e := header.Ethernet(frame)
		if in < 3 && e.IsValid() && e.EtherType() == header.EtherTypeIPv4 {
			ip := header.IPv4(e.Payload())
			if (ip.Check() != nil || !ip.ChecksumValid()) && r == dropNone &&
				[6]byte(e.Destination()) == *l.fw.ourMAC(l.fw.ifs[in]) {
				t.Fatalf("malformed IPv4 header accepted")
			}
		}
	})
}
