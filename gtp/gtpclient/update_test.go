package gtpclient

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/falab/falab/gtp"
	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

const (
	ggsnTEIDC, ggsnTEIDD = 0x3001, 0x4001
	oldTEIDC, oldTEIDD   = 0x1001, 0x2001
	newTEIDC, newTEIDD   = 0x1002, 0x2002
	nsapi                = 5
)

// fakeGGSN answers Update PDP Context Requests on loopback UDP, ignoring
// the first one so that the client has to retransmit. It reports every
// request it saw on got.
func fakeGGSN(t *testing.T) (netip.AddrPort, <-chan *message.UpdatePDPContextRequest) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got := make(chan *message.UpdatePDPContextRequest, 8)
	go func() {
		buf := make([]byte, 2048)
		for n := 0; ; n++ {
			k, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m, err := message.Parse(buf[:k])
			if del, ok := m.(*message.DeletePDPContextRequest); ok && err == nil {
				b, _ := message.Marshal(message.NewDeletePDPContextResponse(newTEIDC, del.Sequence(), ie.NewCause(128)))
				c.WriteToUDPAddrPort(b, from)
				continue
			}
			req, ok := m.(*message.UpdatePDPContextRequest)
			if err != nil || !ok {
				continue
			}
			got <- req
			if n == 0 {
				continue // lost: the client must retransmit
			}
			sgsnTEID, _ := req.TEIDCPlane.TEID()
			b, _ := message.Marshal(message.NewUpdatePDPContextResponse(sgsnTEID, req.Sequence(),
				ie.NewCause(128), ie.NewTEIDDataI(ggsnTEIDD), ie.NewTEIDCPlane(ggsnTEIDC)))
			c.WriteToUDPAddrPort(b, from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), got
}

// TestSendUpdate exchanges an Update with a fake GGSN on loopback, across
// one lost request, and then shows the captured exchange to an inspector
// holding the context: it moves the tunnel to the new SGSN.
func TestSendUpdate(t *testing.T) {
	ggsn, got := fakeGGSN(t)
	sgsn := netip.MustParseAddrPort("127.0.0.2:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := SendUpdate(ctx, Update{
		Local: sgsn, GGSN: ggsn, GGSNControlTEID: ggsnTEIDC, NSAPI: nsapi,
		SGSNControlTEID: newTEIDC, SGSNDataTEID: newTEIDD, Seq: 77, T3: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("SendUpdate: %v", err)
	}
	if !r.Accepted() || r.GGSNDataTEID != ggsnTEIDD {
		t.Fatalf("result %+v", r)
	}
	req := <-got
	if req.TEID() != ggsnTEIDC || req.Sequence() != 77 || req.NSAPI.MustNSAPI() != nsapi ||
		req.TEIDDataI.MustTEID() != newTEIDD || req.SGSNAddressForCPlane.MustIPAddress() != "127.0.0.2" {
		t.Errorf("request header TEID %#x seq %d: %v", req.TEID(), req.Sequence(), req)
	}
	if len(got) < 1 {
		t.Errorf("no retransmission seen")
	}

	// The inspector, holding the context the old SGSN created, accepts
	// the captured exchange and moves the tunnel.
	in := gtp.New(gtp.Config{})
	oldSGSN := netip.MustParseAddrPort("127.0.0.3:2123")
	creq, _ := message.Marshal(message.NewCreatePDPContextRequest(0, 1, ie.NewIMSI("001010123456789"),
		ie.NewTEIDDataI(oldTEIDD), ie.NewTEIDCPlane(oldTEIDC), ie.NewNSAPI(nsapi),
		ie.NewGSNAddress("127.0.0.3"), ie.NewGSNAddress("127.0.0.3")))
	cresp, _ := message.Marshal(message.NewCreatePDPContextResponse(oldTEIDC, 1, ie.NewCause(128),
		ie.NewTEIDDataI(ggsnTEIDD), ie.NewTEIDCPlane(ggsnTEIDC), ie.NewEndUserAddressIPv4("198.18.200.7"),
		ie.NewGSNAddress(ggsn.Addr().String()), ie.NewGSNAddress(ggsn.Addr().String())))
	newSGSN := netip.AddrPortFrom(sgsn.Addr(), 2123)
	for i, step := range []struct {
		src, dst netip.AddrPort
		b        []byte
	}{{oldSGSN, ggsn, creq}, {ggsn, oldSGSN, cresp}, {newSGSN, ggsn, r.Request}, {ggsn, newSGSN, r.Response}} {
		if v := in.Control(step.src, step.dst, step.b, time.Unix(0, 1)); !v.Pass() {
			t.Fatalf("step %d dropped: %v", i, v.Drop)
		}
	}
	tpdu, _ := message.Marshal(message.NewTPDU(newTEIDD, []byte{0x45}))
	if v := in.User(netip.AddrPortFrom(ggsn.Addr(), 2152), netip.AddrPortFrom(sgsn.Addr(), 2152), tpdu); !v.Pass() {
		t.Errorf("G-PDU to the new SGSN dropped: %v", v.Drop)
	}

	// The new SGSN ends the context; the inspector removes it.
	d, err := SendDelete(ctx, Delete{Local: sgsn, GGSN: ggsn, GGSNControlTEID: ggsnTEIDC, NSAPI: nsapi, Seq: 78, T3: 50 * time.Millisecond})
	if err != nil || !d.Accepted() {
		t.Fatalf("SendDelete: %+v, %v", d, err)
	}
	for i, b := range [][]byte{d.Request, d.Response} {
		src, dst := newSGSN, ggsn
		if i == 1 {
			src, dst = ggsn, newSGSN
		}
		if v := in.Control(src, dst, b, time.Unix(0, 2)); !v.Pass() {
			t.Fatalf("delete step %d dropped: %v", i, v.Drop)
		}
	}
	if in.Len() != 0 {
		t.Errorf("context left after the new SGSN's Delete")
	}
}

// TestSendUpdateGivesUp: with no GGSN answering, SendUpdate returns when
// its context ends.
func TestSendUpdateGivesUp(t *testing.T) {
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = SendUpdate(ctx, Update{Local: netip.MustParseAddrPort("127.0.0.2:0"),
		GGSN: silent.LocalAddr().(*net.UDPAddr).AddrPort(), NSAPI: nsapi, T3: 20 * time.Millisecond})
	if err != context.DeadlineExceeded {
		t.Errorf("error %v, want deadline exceeded", err)
	}
}
