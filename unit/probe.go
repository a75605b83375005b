package unit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/falab/falab/failover"
	"github.com/falab/falab/firewall"
)

// probeEtherType carries the units' interface hellos on the data networks
// (IEEE 802 local experimental EtherType), so they never look like IP.
const probeEtherType = 0x88B5

const (
	probeAsk    = 1
	probeAnswer = 2
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// prober confirms a suspected peer failure over the data interfaces: it
// sends authenticated interface hellos on each data interface and reports
// whether the peer answered on any. A peer whose process died or froze
// answers on none; a peer that only lost the failover link answers, and
// then no takeover happens (no split brain).
//
// Each ProbeDataInterfaces is one round with the machine's round id; a new
// round replaces the one in flight. The prober reports only answers (and a
// refused failover port, which proves death at once), each with its round:
// silence is the machine's to time, with its own timer, so a late verdict
// of an old round can never decide a newer one.
//
// Every interface hello that reaches handle, from any host, would cost an
// HMAC on a reader goroutine; so handle checks the cheap things first
// (length, layout, the sender's name), then takes a token from a bucket,
// and only then opens the seal (which itself refuses stale and replayed
// messages before hashing). The bucket is chosen by the frame's source
// MAC (helloLimit): the pair's own MACs and any MAC whose hello has
// authenticated get buckets of their own, every other source shares one,
// so a host flooding forged hellos in the peer's name drains only the
// strangers' bucket and never the peer's.
//
// Concurrency: start runs on the driver; handle on the control sockets' (or
// the firewall's) reader goroutines; mu guards the round; sendMu keeps each
// interface's hellos in sequence order; buckets and windows are per
// interface, fixed at newProber. The round's goroutines are the unit's.
type prober struct {
	u *Unit

	out     *sealer
	in      *opener
	sendMu  sync.Mutex
	limits  map[string]*helloLimit // by interface; the map is read-only after newProber
	windows map[string]*window     // by interface: the peer's probe stream there
	rejects rejectCounters
	now     func() time.Time // the buckets' clock

	mu       sync.Mutex
	round    uint64             // guarded by mu: the round in flight, 0 for none
	answered bool               // guarded by mu: the round in flight was answered
	cancel   context.CancelFunc // guarded by mu: stops the round in flight
	// recent holds the last rounds started, with whether each was
	// answered: an answer to the previous round that arrives during the
	// next one (a slow peer) still proves the peer alive, and the machine
	// decides whether the round still counts.
	recent [8]probeRound // guarded by mu
}

type probeRound struct {
	id       uint64
	answered bool
}

// The interface hello rate limit, per interface. A genuine confirmation
// sends two asks per round (at its start and half way), in at most 10
// rounds: 20 frames per interface, and the peer's answers as many. While
// the failover link is cut both units confirm every unit hold (100 ms),
// each receiving the other's asks and answers: up to 400 frames a second
// per interface (a bucket of 200 a second, as first sized, ran dry in
// under a second of a cut, and both units then took the other for dead).
// A flood costs at most probeRate HMACs a second per interface, about a
// millisecond of CPU.
const (
	probeRate  = 1000 // tokens per second
	probeBurst = 200
)

// helloLimit is one interface's interface-hello rate limit, a bucket per
// trusted source MAC and one shared by all others. Trusted are the pair's
// configured MACs on the interface (in virtual-MAC mode the peer sends
// from one of them) and, learnt, the source of any hello that opened
// under the failover key: the peer's burned-in MAC. Learning is bounded
// (maxTrustedSources, the oldest learnt entry replaced), and only an
// authenticated hello teaches, so a forger cannot buy a bucket of its own.
// What it cannot stop is a forger sending from the peer's own MAC; that
// moves the peer's MAC in the switches, an attack on the segment that the
// limit does not pretend to answer.
type helloLimit struct {
	mu       sync.Mutex
	trusted  [maxTrustedSources]trustedSource // guarded by mu
	n        int                              // guarded by mu: slots in use
	seeded   int                              // slots holding configured MACs, never replaced
	next     int                              // guarded by mu: the learnt slot to replace next
	stranger tokenBucket
}

type trustedSource struct {
	mac    [6]byte
	bucket tokenBucket
}

// maxTrustedSources: the pair's two configured MACs, the peer's burned-in
// MAC and a spare for a peer replaced in place.
const maxTrustedSources = 4

func newHelloLimit(configured ...[]byte) *helloLimit {
	l := &helloLimit{}
	for _, m := range configured {
		if len(m) == 6 && !l.knows([6]byte(m)) && l.n < maxTrustedSources {
			l.trusted[l.n].mac = [6]byte(m)
			l.n++
		}
	}
	l.seeded, l.next = l.n, l.n
	return l
}

// knows reports whether mac has a bucket of its own; mu held or l unshared.
func (l *helloLimit) knows(mac [6]byte) bool {
	for i := range l.n {
		if l.trusted[i].mac == mac {
			return true
		}
	}
	return false
}

// bucketFor returns the bucket a hello from mac spends. The slots live in
// a fixed array, so the pointer stays valid after mu is released.
func (l *helloLimit) bucketFor(mac [6]byte) *tokenBucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.n {
		if l.trusted[i].mac == mac {
			return &l.trusted[i].bucket
		}
	}
	return &l.stranger
}

// trust gives mac, whose hello just authenticated, a bucket of its own.
func (l *helloLimit) trust(mac [6]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.knows(mac) || l.seeded == maxTrustedSources {
		return
	}
	if l.n < maxTrustedSources {
		l.trusted[l.n].mac = mac
		l.n++
		return
	}
	// The replaced slot keeps its bucket's tokens: a reader may hold the
	// bucket right now, and a fresh source starts no richer than it was.
	l.trusted[l.next].mac = mac
	if l.next++; l.next == maxTrustedSources {
		l.next = l.seeded
	}
}

// tokenBucket is one source's interface-hello rate limit.
type tokenBucket struct {
	mu     sync.Mutex
	tokens float64 // guarded by mu
	last   int64   // guarded by mu: ns of the last refill, 0 before the first
}

func (b *tokenBucket) take(now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == 0 {
		b.tokens = probeBurst
	} else if now > b.last {
		b.tokens = min(probeBurst, b.tokens+float64(now-b.last)*probeRate/1e9)
	}
	b.last = max(b.last, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func newProber(u *Unit) *prober {
	p := &prober{
		u:       u,
		out:     newSealer(u.key, "probe"),
		in:      newOpener(u.key, "probe"),
		limits:  map[string]*helloLimit{},
		windows: map[string]*window{},
		now:     time.Now,
	}
	for _, ic := range u.cfg.Firewall.Interfaces {
		p.limits[ic.Name] = newHelloLimit(ic.ActiveMAC, ic.StandbyMAC)
		p.windows[ic.Name] = &window{}
	}
	return p
}

func (p *prober) start(a failover.ProbeDataInterfaces) {
	p.mu.Lock()
	if p.cancel != nil {
		p.cancel()
	}
	p.round, p.answered, p.cancel = a.Round, false, nil
	p.recent[a.Round%uint64(len(p.recent))] = probeRound{id: a.Round}
	p.mu.Unlock()
	p.u.events.Add("probe", fmt.Sprintf("confirming on the data interfaces, round %d: %s", a.Round, a.Reason))
	// Two asks per round: one lost or late frame does not cost the
	// round, and a confirmation stays well inside the peer's rate limit.
	poll := max(a.Poll, a.Timeout/2, time.Millisecond)
	started := time.Now()
	p.u.spawn(func(runCtx context.Context) {
		ctx, cancel := context.WithTimeout(runCtx, a.Timeout)
		defer cancel()
		p.mu.Lock()
		if p.round != a.Round || p.answered { // replaced, or answered already
			p.mu.Unlock()
			return
		}
		p.cancel = cancel
		p.mu.Unlock()
		refused := make(chan struct{})
		p.u.spawn(func(context.Context) {
			if p.u.peerPortRefused(ctx, a.Timeout) {
				close(refused)
			}
		})
		tick := time.NewTicker(poll)
		defer tick.Stop()
		for {
			p.send(probeAsk, a.Round, "")
			select {
			case <-ctx.Done():
				return
			case <-refused:
				p.u.events.Add("probe", "peer's failover port is closed (its kernel refused a datagram after "+time.Since(started).Round(time.Microsecond).String()+"): its process is gone")
				p.u.feed(failover.DataProbeResult{Round: a.Round, PeerAlive: false, How: "by its kernel: its failover port refused a datagram, the process is gone"})
				return
			case <-tick.C:
			}
		}
	})
}

// answeredBy notes the peer's answer to round: the first answer to each
// recent round is reported to the machine.
func (p *prober) answeredBy(round uint64, peerActive bool, peerState failover.State) {
	p.mu.Lock()
	r := &p.recent[round%uint64(len(p.recent))]
	first := round != 0 && r.id == round && !r.answered
	if first {
		r.answered = true
		p.answered = true // an answer to any recent round ends the asking
		if p.cancel != nil {
			p.cancel()
		}
	}
	p.mu.Unlock()
	if !first {
		return
	}
	state := "standby"
	if peerActive {
		state = "active"
	}
	p.u.events.Add("probe", fmt.Sprintf("peer answered round %d on the data interfaces (peer is %s, %v)", round, state, peerState))
	p.u.feed(failover.DataProbeResult{Round: round, PeerAlive: true, PeerActive: peerActive, PeerState: peerState})
}

// send puts one interface hello on every data interface (or only iface).
// Each copy is sealed on its own, so that each interface's stream carries
// its own increasing sequence numbers.
func (p *prober) send(kind byte, round uint64, iface string) {
	// An answer says whether its sender forwards as the active unit and
	// its failover state (the role byte): behind a cut failover link a
	// starting unit waits for an active or Standby Ready peer instead of
	// taking over too, and a standby takes over from a restarted peer.
	body := probeBody(kind, round, p.u.cfg.Name, p.u.active.Load(), failover.State(p.u.role.Load()))
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	for _, ic := range p.u.cfg.Firewall.Interfaces {
		if iface != "" && ic.Name != iface {
			continue
		}
		msg := p.out.seal(body)
		if cp := p.u.control[ic.Name]; cp != nil {
			// From the interface's burned-in MAC: a probe must never
			// move the virtual MAC's entry in the switches.
			frame := make([]byte, 0, 14+len(msg))
			frame = append(frame, broadcastMAC...)
			frame = append(frame, cp.mac...)
			frame = binary.BigEndian.AppendUint16(frame, probeEtherType)
			frame = append(frame, msg...)
			_, _ = cp.port.WriteBatch([][]byte{frame})
			continue
		}
		_ = p.u.fw.SendControl(ic.Name, broadcastMAC, probeEtherType, msg)
	}
}

// readControl reads one data interface's control socket (interface hellos
// only, by the socket's EtherType) until ctx ends or the port closes.
func (p *prober) readControl(ctx context.Context, iface string, port firewall.Port) {
	const batch = 16
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, batch)
	for ctx.Err() == nil {
		n, err := port.ReadBatch(bufs, sizes)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			continue
		}
		for i := range n {
			f := bufs[i][:sizes[i]]
			if len(f) < 14 || binary.BigEndian.Uint16(f[12:14]) != probeEtherType {
				continue
			}
			p.handle(iface, [6]byte(f[6:12]), f[14:])
		}
	}
}

// Interface hello body: kind(1) | round(8) | name length(1) | name |
// role(1). The role byte's low bit says the sender forwards as the active;
// the bits above hold its failover state plus one (0: not said). A
// standby learns from it that a peer answering behind a cut failover link
// is a restarted unit in Negotiation (and takes the role), and a starting
// unit that its peer is Standby Ready (and waits for it).
const probeBodyMin = 11

func probeBody(kind byte, round uint64, name string, active bool, state failover.State) []byte {
	body := make([]byte, 0, probeBodyMin+len(name))
	body = append(body, kind)
	body = binary.BigEndian.AppendUint64(body, round)
	body = append(body, byte(len(name)))
	body = append(body, name...)
	role := byte(state+1) << 1
	if active {
		role |= 1
	}
	return append(body, role)
}

// parseRole reads the role byte of an interface hello.
func parseRole(b byte) (active bool, state failover.State, known bool) {
	active = b&1 == 1
	if s := b >> 1; s > 0 && failover.State(s-1).Valid() {
		return active, failover.State(s - 1), true
	}
	return active, failover.Disabled, false
}

// handle takes an interface hello from a data interface: answer the peer's
// questions in every state, and note the peer's answers to ours.
func (p *prober) handle(iface string, src [6]byte, payload []byte) {
	body, r := p.check(iface, src, payload, p.now())
	if r != accepted {
		p.rejects.add(r)
		return
	}
	if body == nil {
		return // our own hello, looped back
	}
	kind, round := body[0], binary.BigEndian.Uint64(body[1:9])
	switch kind {
	case probeAsk:
		p.send(probeAnswer, round, iface)
	case probeAnswer:
		active, state, _ := parseRole(body[len(body)-1])
		p.answeredBy(round, active, state)
	}
}

// check opens an interface hello from the peer, sent from MAC src,
// cheapest tests first, and returns its body; a nil body and accepted for
// this unit's own hello.
func (p *prober) check(iface string, src [6]byte, payload []byte, now time.Time) ([]byte, rejectReason) {
	if len(payload) < sealOverhead+probeBodyMin {
		return nil, rejectMalformed
	}
	b := payload[sealHeaderLen:]
	n := int(b[9])
	// Exactly one body: the length is the sender's name's, no more.
	if len(payload) != sealOverhead+probeBodyMin+n {
		return nil, rejectMalformed
	}
	from := b[10 : 10+n]
	if string(from) != p.u.cfg.Peer {
		if string(from) == p.u.cfg.Name {
			return nil, accepted
		}
		return nil, rejectMalformed
	}
	limit, w := p.limits[iface], p.windows[iface]
	if limit == nil || w == nil {
		return nil, rejectMalformed
	}
	if !limit.bucketFor(src).take(now.UnixNano()) {
		return nil, rejectRateLimited
	}
	body, r := p.in.open(w, payload)
	if r != accepted {
		return nil, r
	}
	limit.trust(src)
	if body[0] != probeAsk && body[0] != probeAnswer {
		return nil, rejectMalformed
	}
	return body, accepted
}

// portCheckMagic is the whole payload of peerPortRefused's datagrams;
// shorter than any sealed hello, so never mistaken for one.
var portCheckMagic = []byte("falab-port-check")

// peerPortRefused sends datagrams to the peer's hello port over the failover
// link and reports whether the peer's kernel refused one (ICMP port
// unreachable, seen as ECONNREFUSED on a connected socket) within the given
// time: the peer's process is gone, a definitive answer long before the
// data interfaces' silence is. It can only say "dead": a cut link, a frozen
// process or a live one give no refusal.
func (u *Unit) peerPortRefused(ctx context.Context, within time.Duration) bool {
	peer := &net.UDPAddr{IP: u.cfg.PeerAddr.AsSlice(), Port: HelloPort}
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: u.cfg.LocalAddr.AsSlice()}, peer)
	if err != nil {
		return false
	}
	defer c.Close()
	deadline := time.Now().Add(within)
	buf := make([]byte, 64)
	// Ask again every half millisecond: a dying process closes its
	// sockets one by one, and a datagram that reaches the hello socket
	// before it is closed is simply swallowed.
	for time.Now().Before(deadline) && ctx.Err() == nil {
		next := time.Now().Add(500 * time.Microsecond)
		if next.After(deadline) {
			next = deadline
		}
		_ = c.SetDeadline(next)
		// Not a hello: the peer's unit, if alive, counts it as a port
		// check and drops it.
		if _, err := c.Write(portCheckMagic); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return true
			}
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				return false
			}
			continue
		}
		if _, err := c.Read(buf); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return true
			}
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				return false
			}
		}
	}
	return false
}
