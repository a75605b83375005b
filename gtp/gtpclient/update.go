// Package gtpclient sends the GTPv1-C requests the lab's GSNs never
// send: sgsnemu (osmo-ggsn's SGSN emulator) creates and deletes PDP
// contexts but never updates one, so the lab exercises Update PDP Context
// (an SGSN change, TS 29.060 §7.3.3) with SendUpdate, and ends the moved
// context with SendDelete from the new SGSN; both are built on go-gtp's
// message encoding.
//
// It is a test and lab tool, not part of the data plane. It must not import
// falab's data plane packages (firewall, unit, replicate).
package gtpclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

// Update describes an Update PDP Context Request from an SGSN (typically a
// "new" SGSN taking over the MS) to the GGSN holding the context.
type Update struct {
	// Local is the SGSN control address to send from; its port may be
	// zero for any (a GGSN answers to the request's source). Its address
	// is the SGSN's signalling and user-traffic address given to the GGSN
	// unless DataAddr is set.
	Local    netip.AddrPort
	DataAddr netip.Addr
	// GGSN is the GGSN's control address (port 2123).
	GGSN netip.AddrPort
	// GGSNControlTEID is the GGSN's control TEID of the context: the
	// request's header TEID.
	GGSNControlTEID uint32
	NSAPI           uint8
	// SGSNControlTEID and SGSNDataTEID are the SGSN's TEIDs for the
	// context after the update; the response comes back with the control
	// one in its header.
	SGSNControlTEID, SGSNDataTEID uint32
	Seq                           uint16
	// T3 is the retransmission interval (TS 29.060 T3-RESPONSE, zero
	// means 1s); the request is sent until a response or ctx ends.
	T3 time.Duration
}

// Result is the GGSN's answer.
type Result struct {
	Cause uint8
	// The GGSN's TEIDs if it changed them (zero when absent).
	GGSNControlTEID, GGSNDataTEID uint32
	Request, Response             []byte // the datagrams exchanged, for a check or a capture
}

// Accepted reports whether the cause accepts the request (TS 29.060
// §7.7.1: 128 to 191).
func (r Result) Accepted() bool { return r.Cause >= 128 && r.Cause < 192 }

// ErrNoCause is returned for a response without a Cause IE.
var ErrNoCause = errors.New("gtpclient: response without cause")

// Request returns the encoded Update PDP Context Request.
func (u Update) Request() ([]byte, error) {
	data := u.DataAddr
	if !data.IsValid() {
		data = u.Local.Addr()
	}
	m := message.NewUpdatePDPContextRequest(u.GGSNControlTEID, u.Seq,
		ie.NewTEIDDataI(u.SGSNDataTEID),
		ie.NewTEIDCPlane(u.SGSNControlTEID),
		ie.NewNSAPI(u.NSAPI),
		ie.NewGSNAddress(u.Local.Addr().String()),
		ie.NewGSNAddress(data.String()),
		// A QoS profile is mandatory: allocation/retention priority 1
		// and sgsnemu's default R99 profile 0x0b921f.
		ie.NewQoSProfile([]byte{0x01, 0x0b, 0x92, 0x1f}),
	)
	return message.Marshal(m)
}

// SendUpdate sends the request from u.Local to u.GGSN, retransmitting it
// every T3, and returns the first Update PDP Context Response with the
// request's sequence number from the GGSN.
func SendUpdate(ctx context.Context, u Update) (Result, error) {
	req, err := u.Request()
	if err != nil {
		return Result{}, err
	}
	return exchange(ctx, u.Local, u.GGSN, req, u.T3, func(b []byte) (Result, bool, error) {
		return answer(b, u.Seq, message.MsgTypeUpdatePDPContextResponse)
	})
}

// Delete describes a Delete PDP Context Request from an SGSN, for the lab
// to end a context it moved with Update (sgsnemu stops at the GGSN's
// Error Indication once its context has moved away).
type Delete struct {
	Local, GGSN     netip.AddrPort
	GGSNControlTEID uint32
	NSAPI           uint8
	Seq             uint16
	T3              time.Duration
}

// SendDelete sends the Delete and returns the GGSN's response.
func SendDelete(ctx context.Context, d Delete) (Result, error) {
	req, err := message.Marshal(message.NewDeletePDPContextRequest(d.GGSNControlTEID, d.Seq,
		ie.NewNSAPI(d.NSAPI), ie.NewTeardownInd(true)))
	if err != nil {
		return Result{}, err
	}
	return exchange(ctx, d.Local, d.GGSN, req, d.T3, func(b []byte) (Result, bool, error) {
		return answer(b, d.Seq, message.MsgTypeDeletePDPContextResponse)
	})
}

// exchange sends req from local to remote every t3 until match accepts a
// datagram from remote or ctx ends.
func exchange(ctx context.Context, local, remote netip.AddrPort, req []byte, t3 time.Duration,
	match func([]byte) (Result, bool, error)) (Result, error) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(local))
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	if t3 <= 0 {
		t3 = time.Second
	}
	buf := make([]byte, 65535)
	for {
		if _, err := c.WriteToUDPAddrPort(req, remote); err != nil {
			return Result{}, err
		}
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		c.SetReadDeadline(time.Now().Add(t3))
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				if ctx.Err() != nil {
					return Result{}, ctx.Err()
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // retransmit
				}
				return Result{}, err
			}
			if from.Addr().Unmap() != remote.Addr() {
				continue
			}
			if r, ok, err := match(buf[:n]); ok || err != nil {
				r.Request = req
				return r, err
			}
		}
	}
}

// answer decodes b if it is a response of type want to seq.
func answer(b []byte, seq uint16, want uint8) (Result, bool, error) {
	m, err := message.Parse(b)
	if err != nil || m.MessageType() != want || m.Sequence() != seq {
		return Result{}, false, nil
	}
	var cause, teidC, teidD *ie.IE
	switch resp := m.(type) {
	case *message.UpdatePDPContextResponse:
		cause, teidC, teidD = resp.Cause, resp.TEIDCPlane, resp.TEIDDataI
	case *message.DeletePDPContextResponse:
		cause = resp.Cause
	}
	r := Result{Response: append([]byte(nil), b...)}
	if cause == nil {
		return r, true, ErrNoCause
	}
	if r.Cause, err = cause.Cause(); err != nil {
		return r, true, fmt.Errorf("gtpclient: cause: %w", err)
	}
	if teidC != nil {
		r.GGSNControlTEID, _ = teidC.TEID()
	}
	if teidD != nil {
		r.GGSNDataTEID, _ = teidD.TEID()
	}
	return r, true, nil
}
