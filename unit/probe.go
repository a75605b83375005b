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
// Concurrency: start runs on the driver; handle on the firewall's reader
// goroutines; mu guards the round. The round's goroutines are the unit's.
type prober struct {
	u *Unit

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

func newProber(u *Unit) *prober { return &prober{u: u} }

func (p *prober) start(a failover.ProbeDataInterfaces) {
	p.mu.Lock()
	if p.cancel != nil {
		p.cancel()
	}
	p.round, p.answered, p.cancel = a.Round, false, nil
	p.recent[a.Round%uint64(len(p.recent))] = probeRound{id: a.Round}
	p.mu.Unlock()
	p.u.events.Add("probe", fmt.Sprintf("confirming on the data interfaces, round %d: %s", a.Round, a.Reason))
	poll := max(a.Poll, time.Millisecond)
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
func (p *prober) answeredBy(round uint64, peerActive bool) {
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
	p.u.events.Add("probe", fmt.Sprintf("peer answered round %d on the data interfaces (peer is %s)", round, state))
	p.u.feed(failover.DataProbeResult{Round: round, PeerAlive: true, PeerActive: peerActive})
}

// send puts one interface hello on every data interface (or only iface).
func (p *prober) send(kind byte, round uint64, iface string) {
	body := make([]byte, 0, 11+len(p.u.cfg.Name))
	body = append(body, kind)
	body = binary.BigEndian.AppendUint64(body, round)
	body = append(body, byte(len(p.u.cfg.Name)))
	body = append(body, p.u.cfg.Name...)
	// An answer says whether its sender forwards as the active unit: a
	// starting unit that hears no hello uses it to wait for an active
	// peer behind a cut failover link instead of taking over too.
	var active byte
	if p.u.active.Load() {
		active = 1
	}
	body = append(body, active)
	msg := seal(p.u.key, "probe", body)
	for _, ic := range p.u.cfg.Firewall.Interfaces {
		if iface != "" && ic.Name != iface {
			continue
		}
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
			p.handle(iface, f[14:])
		}
	}
}

// handle takes an interface hello from a data interface: answer the peer's
// questions in every state, and note the peer's answers to ours.
func (p *prober) handle(iface string, payload []byte) {
	body, ok := open(p.u.key, "probe", payload)
	if !ok || len(body) < 10 {
		return
	}
	kind, round := body[0], binary.BigEndian.Uint64(body[1:9])
	n := int(body[9])
	if len(body) < 10+n {
		return
	}
	from := string(body[10 : 10+n])
	if from == p.u.cfg.Name || from != p.u.cfg.Peer {
		return
	}
	switch kind {
	case probeAsk:
		p.send(probeAnswer, round, iface)
	case probeAnswer:
		peerActive := len(body) > 10+n && body[10+n] == 1
		p.answeredBy(round, peerActive)
	}
}

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
		// Not a hello: the peer's unit, if alive, drops it as unauthenticated.
		if _, err := c.Write([]byte("falab-port-check")); err != nil {
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
