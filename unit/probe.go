package unit

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/falab/falab/failover"
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
// Concurrency: start runs on the driver; handle on the firewall's reader
// goroutines; mu guards the round.
type prober struct {
	u *Unit

	mu       sync.Mutex
	round    uint64        // guarded by mu: the probe in flight, 0 for none
	answered chan struct{} // guarded by mu: closed on the first answer
}

func newProber(u *Unit) *prober { return &prober{u: u} }

func (p *prober) start(a failover.ProbeDataInterfaces) {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	round := binary.BigEndian.Uint64(nonce[:]) | 1
	answered := make(chan struct{})
	p.mu.Lock()
	p.round, p.answered = round, answered
	p.mu.Unlock()
	p.u.events.Add("probe", "confirming on the data interfaces: "+a.Reason)
	poll := max(a.Poll, time.Millisecond)
	closed := make(chan struct{})
	go p.portClosed(a.Timeout, closed)
	go func() {
		deadline := time.NewTimer(a.Timeout)
		defer deadline.Stop()
		tick := time.NewTicker(poll)
		defer tick.Stop()
		started := time.Now()
		p.send(probeAsk, round, "")
		for {
			select {
			case <-answered:
				p.finish(round)
				p.u.events.Add("probe", "peer answered on the data interfaces after "+time.Since(started).Round(time.Microsecond).String())
				p.u.feed(failover.DataProbeResult{PeerAlive: true})
				return
			case <-closed:
				p.finish(round)
				p.u.events.Add("probe", "peer's failover port is closed (its kernel refused a datagram after "+time.Since(started).Round(time.Microsecond).String()+"): its process is gone")
				p.u.feed(failover.DataProbeResult{PeerAlive: false, How: "by its kernel: its failover port refused a datagram, the process is gone"})
				return
			case <-deadline.C:
				p.finish(round)
				p.u.events.Add("probe", "no answer from the peer on any data interface in "+a.Timeout.String())
				p.u.feed(failover.DataProbeResult{PeerAlive: false, How: "on data interfaces (no answer within " + a.Timeout.String() + ")"})
				return
			case <-tick.C:
				p.send(probeAsk, round, "")
			}
		}
	}()
}

func (p *prober) finish(round uint64) {
	p.mu.Lock()
	if p.round == round {
		p.round = 0
	}
	p.mu.Unlock()
}

// send puts one interface hello on every data interface (or only iface).
func (p *prober) send(kind byte, round uint64, iface string) {
	body := make([]byte, 0, 10+len(p.u.cfg.Name))
	body = append(body, kind)
	body = binary.BigEndian.AppendUint64(body, round)
	body = append(body, byte(len(p.u.cfg.Name)))
	body = append(body, p.u.cfg.Name...)
	msg := seal(p.u.key, "probe", body)
	for _, ic := range p.u.cfg.Firewall.Interfaces {
		if iface != "" && ic.Name != iface {
			continue
		}
		_ = p.u.fw.SendControl(ic.Name, broadcastMAC, probeEtherType, msg)
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
		p.mu.Lock()
		if p.round == round && p.answered != nil {
			select {
			case <-p.answered:
			default:
				close(p.answered)
			}
		}
		p.mu.Unlock()
	}
}

// portClosed closes closed if the peer's failover port refuses a datagram
// within the given time (see Unit.peerPortRefused).
func (p *prober) portClosed(within time.Duration, closed chan<- struct{}) {
	if p.u.peerPortRefused(within) {
		close(closed)
	}
}

// peerPortRefused sends datagrams to the peer's hello port over the failover
// link and reports whether the peer's kernel refused one (ICMP port
// unreachable, seen as ECONNREFUSED on a connected socket) within the given
// time: the peer's process is gone, a definitive answer long before the
// data interfaces' silence is. It can only say "dead": a cut link, a frozen
// process or a live one give no refusal.
func (u *Unit) peerPortRefused(within time.Duration) bool {
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
	for time.Now().Before(deadline) {
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
