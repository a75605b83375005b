package firewall

// Cut-through proxy authentication (ASA "aaa authentication match ACL
// IFACE LOCAL" with "aaa authentication listener http IFACE port N"): the
// first TCP connection from a source that has not authenticated, entering
// on the configured interface and matching the class, is steered to the
// unit's own listener instead of the server it addressed. The listener
// (package uauth, served by the unit on its own IP stack) asks for a user
// name and password, records the source in the uauth table and redirects
// the client to the URL it asked for; the client's next connection then
// passes as ordinary traffic.
//
// Steering is a destination rewrite without source translation: the
// client's segments go to the listener with the interface's address and
// the listener port as destination (so the listener sees the client's own
// address, which the uauth entry must carry), and the listener's answers
// get the original server address and port back as their source, so the
// client believes it talks to the server. A steered flow is not a
// connection: it lives in a small table of its own (at most
// maxSteered, idle ones dropped after steerIdle), local to the unit like
// the uauth table itself. A source that is authorized costs one call to
// the authorizer on its new connections only; with no authentication
// configured, a new flow pays one nil check.

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/falab/falab/firewall/header"
)

// Authorizer is the uauth table as the data plane asks it: whether a
// source has authenticated (and, if so, that its entry is refreshed).
// Safe for concurrent use; must not block.
type Authorizer interface {
	Authorized(src netip.Addr, now time.Time) bool
}

// LocalStack is the unit's own IP stack that steered segments are
// delivered to (the box). Deliver must not keep ip.
type LocalStack interface {
	Deliver(ip []byte) error
}

// Bounds of the steered-flow table. A flow both ends closed with a FIN
// goes after steerClosed, time for the last ACK and a retransmitted FIN
// (the listener answers each client once and closes, so without it a
// burst of logins would hold the table for steerIdle).
const (
	maxSteered  = 4096
	steerIdle   = 30 * time.Second
	steerClosed = 2 * time.Second
)

// steerKey is a steered flow by its client end.
type steerKey struct {
	client [4]byte
	port   uint16
}

// steered is where a steered flow was going, and on which interface.
type steered struct {
	server     [4]byte
	serverPort uint16
	ifIdx      int
	lastSeen   int64
	// fins marks the ends that sent a FIN: finClient, finListener.
	fins uint8
}

const (
	finClient   = 1 << iota // the client sent a FIN
	finListener             // the listener sent a FIN
)

// idleLimit is how long s may stay silent before it goes.
func (s *steered) idleLimit() time.Duration {
	if s.fins == finClient|finListener {
		return steerClosed
	}
	return steerIdle
}

// uauthState is the configured authentication and the steered flows.
type uauthState struct {
	auth     Authorizer
	stack    LocalStack
	ifIdx    int
	class    []ace
	listener uint16

	mu    sync.Mutex
	flows map[steerKey]*steered // guarded by mu
	count atomic.Int64          // len(flows), read without mu
}

// AttachUAuth configures cut-through proxy authentication: new TCP
// connections entering on iface whose original tuple match permits, from
// a source auth has not authorized, are steered to listenerPort on the
// interface's address and delivered to stack. Call before Run.
func (f *Firewall) AttachUAuth(auth Authorizer, stack LocalStack, iface string, match []ACE, listenerPort uint16) bool {
	i, ok := f.byName[iface]
	if !ok || auth == nil || stack == nil || f.transparent {
		return false
	}
	f.uauth = &uauthState{auth: auth, stack: stack, ifIdx: i, class: compileACL(match), listener: listenerPort,
		flows: map[steerKey]*steered{}}
	return true
}

// SteeredCount returns the flows steered to the listener now.
func (f *Firewall) SteeredCount() int {
	if f.uauth == nil {
		return 0
	}
	return int(f.uauth.count.Load())
}

// steer handles, for a packet of no connection (w.p, arriving on in), a
// flow steered to the listener: a segment of one already steered, or the
// SYN of a new one from a source that must authenticate. mine is false
// for every other packet, which goes on to newFlow.
func (w *worker) steer(in *iface) (r DropReason, mine bool) {
	u := w.f.uauth
	t := w.p.tuple
	if u == nil || t.Proto != header.ProtocolTCP || in.idx != u.ifIdx {
		return dropNone, false
	}
	k := steerKey{t.Src, t.SrcPort}
	if u.count.Load() > 0 {
		u.mu.Lock()
		s := u.flows[k]
		if s != nil && s.server == t.Dst && s.serverPort == t.DstPort {
			s.lastSeen = w.now
			if w.p.tcpFlags&header.TCPFlagFIN != 0 {
				s.fins |= finClient
			}
			if w.p.tcpFlags&header.TCPFlagRST != 0 {
				delete(u.flows, k)
				u.count.Add(-1)
			}
			u.mu.Unlock()
			return w.deliverSteered(in), true
		}
		u.mu.Unlock()
	}
	if !opensFlow(&w.p) || !aclPermits(u.class, t.Proto, t.Src, t.Dst, t.DstPort) ||
		u.auth.Authorized(netip.AddrFrom4(t.Src), time.Unix(0, w.now)) {
		return dropNone, false
	}
	if out, _, ok := w.f.lookupRoute(t.Dst); !ok || w.f.permits(in, w.f.ifs[out], t) != dropNone {
		return dropNone, false // the policy decides it as any other flow
	}
	u.mu.Lock()
	if len(u.flows) >= maxSteered {
		u.mu.Unlock()
		return DropUAuthSteerFull, true
	}
	if _, ok := u.flows[k]; !ok {
		u.count.Add(1)
	}
	u.flows[k] = &steered{server: t.Dst, serverPort: t.DstPort, ifIdx: in.idx, lastSeen: w.now}
	u.mu.Unlock()
	return w.deliverSteered(in), true
}

// deliverSteered rewrites a steered segment's destination to the
// listener on in's address and hands it to the unit's stack.
func (w *worker) deliverSteered(in *iface) DropReason {
	u := w.f.uauth
	ip := w.p.ip
	tcp := header.TCP(w.p.l4)
	old := ip.DestinationAddress()
	ip.SetDestinationAddressWithChecksumUpdate(in.addr)
	tcp.UpdateChecksumForAddress(old, in.addr)
	tcp.SetDestinationPortWithChecksumUpdate(u.listener)
	if err := u.stack.Deliver(ip); err != nil {
		return DropUAuthListener
	}
	return dropNone
}

// Unsteer rewrites, in place, a packet the unit's stack sends from the
// listener to a steered client: its source becomes the server the client
// addressed. It reports whether ip belonged to a steered flow; the caller
// then routes it as the unit's own packet.
func (f *Firewall) Unsteer(ip header.IPv4, now int64) bool {
	u := f.uauth
	if u == nil || u.count.Load() == 0 || ip.Protocol() != header.ProtocolTCP || ip.IsFragment() {
		return false
	}
	tcp := header.TCP(ip.Payload())
	if tcp.Check() != nil || tcp.SourcePort() != u.listener {
		return false
	}
	k := steerKey{ip.DestinationAddress(), tcp.DestinationPort()}
	u.mu.Lock()
	s := u.flows[k]
	if s == nil || f.ifs[s.ifIdx].addr != ip.SourceAddress() {
		u.mu.Unlock()
		return false
	}
	s.lastSeen = now
	server, port := s.server, s.serverPort
	if tcp.Flags()&header.TCPFlagFIN != 0 {
		s.fins |= finListener
	}
	if tcp.Flags()&header.TCPFlagRST != 0 {
		delete(u.flows, k)
		u.count.Add(-1)
	}
	u.mu.Unlock()
	old := ip.SourceAddress()
	ip.SetSourceAddressWithChecksumUpdate(server)
	tcp.UpdateChecksumForAddress(old, server)
	tcp.SetSourcePortWithChecksumUpdate(port)
	return true
}

// expireSteered drops steered flows idle past steerIdle, or past
// steerClosed once both ends sent a FIN.
func (f *Firewall) expireSteered(now int64) {
	u := f.uauth
	if u == nil || u.count.Load() == 0 {
		return
	}
	u.mu.Lock()
	for k, s := range u.flows {
		if now-s.lastSeen > int64(s.idleLimit()) {
			delete(u.flows, k)
			u.count.Add(-1)
		}
	}
	u.mu.Unlock()
}
