package ctiqbe

// The inspection engine of the CTIQBE lab model (a lab model of CTIQBE's
// behaviour, not wire-compatible).

import (
	"sync"
	"time"
)

// DropReason says why the engine dropped a packet; its String is the name
// a firewall counts it under (show asp drop).
type DropReason uint8

// Drop reasons. The zero value is "not dropped".
const (
	ReasonNone DropReason = iota
	// ReasonNoSession: a message that needs a session record (or a call
	// record) the engine does not have, such as a hang-up seen by the unit
	// that became active after a failover.
	ReasonNoSession
	// ReasonMalformed: a message that does not decode, comes from the
	// wrong side, or contradicts the session (a second device, a call id
	// in use).
	ReasonMalformed
	// ReasonOutOfOrder: a TCP segment that starts after the next byte the
	// engine expects; TCP retransmits the gap and then it.
	ReasonOutOfOrder
	// ReasonTableFull: no room for one more connection or call.
	ReasonTableFull
	reasonEnd
)

var reasonNames = [...]string{"", "ctiqbe-no-session", "ctiqbe-malformed", "ctiqbe-out-of-order", "ctiqbe-table-full"}

func (r DropReason) String() string {
	if r >= reasonEnd {
		return "ctiqbe-unknown"
	}
	return reasonNames[r]
}

// ConnKey identifies a CTIQBE connection by its original tuple: the phone
// (the initiator) and the CallManager (the responder, normally port 2748).
type ConnKey struct {
	Phone       [4]byte
	PhonePort   uint16
	Manager     [4]byte
	ManagerPort uint16
}

// Packet is one TCP segment of a CTIQBE connection as the engine sees it.
type Packet struct {
	Conn      ConnKey
	FromPhone bool   // the segment travels from the phone to the CallManager
	Seq       uint32 // TCP sequence number of Payload's first byte
	Payload   []byte // the TCP payload; not kept after Inspect returns
	Now       time.Time
}

// ProtoUDP is the IP protocol number of the media pinholes.
const ProtoUDP = 17

// Pinhole is a media flow the engine expects: RTP or RTCP over UDP to Dst
// port DstPort, from Src (zero: any source).
type Pinhole struct {
	Proto   uint8
	Src     [4]byte
	Dst     [4]byte
	DstPort uint16
	Timeout time.Duration
}

// Result is the engine's answer for one packet. Open and Close are
// appended to (reuse them with [:0] to allocate nothing): the pinholes to
// open, and those to close. A dropped packet opens and closes nothing.
type Result struct {
	Drop   bool
	Reason DropReason
	Open   []Pinhole
	Close  []Pinhole
}

// Bounds and defaults of the engine.
const (
	DefaultMaxConns       = 1024
	MaxCallsPerSession    = 4
	DefaultPinholeTimeout = 2 * time.Minute
	// DefaultSessionIdle is how long a connection's state outlives its
	// last message (heartbeats keep it alive).
	DefaultSessionIdle = 2 * time.Minute
)

// Config sets the engine's bounds; zero fields take the defaults.
type Config struct {
	MaxConns       int
	PinholeTimeout time.Duration
	SessionIdle    time.Duration
}

// Replicated says whether the engine's state is replicated to the standby
// unit: it is not, as on an ASA. The engine has no change records.
const Replicated = false

// Engine inspects CTIQBE connections: it frames each direction's stream,
// keeps the session table (one registered device per connection, and its
// calls keyed by call id), and turns call setups into pinholes. Its state
// is not replicated ([Replicated]).
//
// It is safe for concurrent use. One mutex guards the whole table: the
// control channel carries a few messages per call and per heartbeat, not
// the media, so contention is not a concern here.
type Engine struct {
	cfg Config

	mu       sync.Mutex
	conns    map[ConnKey]*connState // guarded by mu
	counters Counters               // guarded by mu
}

// Counters counts what the engine saw.
type Counters struct {
	Messages   uint64 // messages accepted
	NoSession  uint64 // ctiqbe-no-session drops
	Malformed  uint64 // ctiqbe-malformed drops
	OutOfOrder uint64 // ctiqbe-out-of-order drops
	TableFull  uint64 // ctiqbe-table-full drops
}

// sessState is where a device stands on its connection.
type sessState uint8

const (
	sessNone        sessState = iota // no session record
	sessRegistering                  // Register seen, RegisterAck not yet
	sessRegistered
)

// call is one call of a session: the phone's media (from MakeCall) and the
// remote party's (from CallSetup).
type call struct {
	id                    uint32
	phone, remote         [4]byte
	phonePort, remotePort uint16
	acked                 bool // CallSetupAck seen
	ending                bool // HangUp seen, pinholes closed
}

// session is a connection's session record. It is a value: Inspect works
// on a copy and keeps it only if the packet passes.
type session struct {
	state     sessState
	device    string
	deviceID  uint32
	heartbeat uint16
	// pending is the media of a MakeCall that has no CallSetup yet.
	pending     bool
	pendingAddr [4]byte
	pendingPort uint16
	calls       [MaxCallsPerSession]call
	ncalls      int
}

// stream is one direction's framing state.
type stream struct {
	buf      [MaxMessageLen]byte // a partial message
	n        int                 // bytes in buf
	next     uint32              // TCP sequence number of the next byte to inspect
	seqKnown bool
}

// connState is what the engine keeps per connection.
type connState struct {
	dir      [2]stream // 0: from the phone, 1: from the CallManager
	sess     session
	lastSeen time.Time
}

// NewEngine returns an empty engine.
func NewEngine(cfg Config) *Engine {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.PinholeTimeout <= 0 {
		cfg.PinholeTimeout = DefaultPinholeTimeout
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	return &Engine{cfg: cfg, conns: make(map[ConnKey]*connState)}
}

// Inspect inspects one segment and fills r. A segment is dropped whole if
// any message in it is malformed or needs a record the engine lacks, and
// then nothing of the engine's state changes: TCP retransmits the segment,
// and the engine judges it again the same way. A retransmission of bytes
// already inspected passes without being parsed again.
func (e *Engine) Inspect(p *Packet, r *Result) {
	r.Drop, r.Reason = false, ReasonNone
	if len(p.Payload) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, known := e.conns[p.Conn]
	var work connState
	if known {
		work = *c
	}
	d := 1
	if p.FromPhone {
		d = 0
	}
	s := &work.dir[d]
	payload := p.Payload
	if s.seqKnown {
		off := int32(p.Seq - s.next)
		if off > 0 {
			e.drop(r, ReasonOutOfOrder)
			return
		}
		if int(-off) >= len(payload) {
			return // all of it inspected before
		}
		payload = payload[-off:]
	}
	s.seqKnown, s.next = true, p.Seq+uint32(len(p.Payload))
	if !known && len(e.conns) >= e.cfg.MaxConns {
		e.expireLocked(p.Now, r) // what expired is gone whatever this packet's fate
		if len(e.conns) >= e.cfg.MaxConns {
			e.drop(r, ReasonTableFull)
			return
		}
	}
	nOpen, nClose := len(r.Open), len(r.Close)
	msgs, reason := e.consume(&work, s, payload, p.FromPhone, r)
	if reason != ReasonNone {
		r.Open, r.Close = r.Open[:nOpen], r.Close[:nClose]
		e.drop(r, reason)
		return
	}
	e.counters.Messages += uint64(msgs)
	work.lastSeen = p.Now
	if !known {
		c = new(connState)
		e.conns[p.Conn] = c
	}
	*c = work
}

func (e *Engine) drop(r *Result, reason DropReason) {
	r.Drop, r.Reason = true, reason
	switch reason {
	case ReasonNoSession:
		e.counters.NoSession++
	case ReasonMalformed:
		e.counters.Malformed++
	case ReasonOutOfOrder:
		e.counters.OutOfOrder++
	case ReasonTableFull:
		e.counters.TableFull++
	}
}

// consume frames b (the new bytes of stream s) into messages and applies
// each to c, returning how many it applied, or why it stopped.
func (e *Engine) consume(c *connState, s *stream, b []byte, fromPhone bool, r *Result) (int, DropReason) {
	applied := 0
	for len(b) > 0 {
		var msg []byte
		if s.n > 0 {
			if s.n < 2 {
				k := copy(s.buf[s.n:2], b)
				s.n, b = s.n+k, b[k:]
				if s.n < 2 {
					break
				}
			}
			n, err := MessageLen(s.buf[:2])
			if err != nil {
				return applied, ReasonMalformed
			}
			k := copy(s.buf[s.n:n], b)
			s.n, b = s.n+k, b[k:]
			if s.n < n {
				break
			}
			msg, s.n = s.buf[:n], 0
		} else {
			n, err := MessageLen(b)
			if err != nil {
				return applied, ReasonMalformed
			}
			if n == 0 || len(b) < n {
				s.n = copy(s.buf[:], b)
				break
			}
			msg, b = b[:n], b[n:]
		}
		var m Message
		if err := m.decode(msg, true); err != nil || m.Type.FromPhone() != fromPhone {
			return applied, ReasonMalformed
		}
		if reason := e.apply(&c.sess, &m, r); reason != ReasonNone {
			return applied, reason
		}
		applied++
	}
	return applied, ReasonNone
}

// apply applies one well-formed message to session ss.
func (e *Engine) apply(ss *session, m *Message, r *Result) DropReason {
	switch m.Type {
	case TypeRegister:
		if ss.state == sessNone {
			*ss = session{state: sessRegistering, device: m.Device}
		} else if ss.device != m.Device {
			return ReasonMalformed // the model: one device per connection
		}
		return ReasonNone
	case TypeRegisterAck:
		if ss.state == sessNone {
			return ReasonNoSession
		}
		ss.state, ss.deviceID, ss.heartbeat = sessRegistered, m.DeviceID, m.Heartbeat
		return ReasonNone
	case TypeUnregister:
		if ss.state == sessNone {
			return ReasonNoSession
		}
		e.closeSession(ss, r)
		*ss = session{}
		return ReasonNone
	}
	if ss.state != sessRegistered {
		return ReasonNoSession
	}
	switch m.Type {
	case TypeMakeCall:
		ss.pending, ss.pendingAddr, ss.pendingPort = true, m.MediaAddr, m.MediaPort
		e.openPair(r, [4]byte{}, m.MediaAddr, m.MediaPort)
	case TypeCallSetup:
		switch {
		case !ss.pending:
			return ReasonNoSession
		case ss.find(m.CallID) >= 0:
			return ReasonMalformed
		case ss.ncalls == MaxCallsPerSession:
			return ReasonTableFull
		}
		cl := call{id: m.CallID, phone: ss.pendingAddr, phonePort: ss.pendingPort, remote: m.MediaAddr, remotePort: m.MediaPort}
		ss.calls[ss.ncalls] = cl
		ss.ncalls++
		ss.pending = false
		e.openPair(r, cl.phone, cl.remote, cl.remotePort)
		e.openPair(r, cl.remote, cl.phone, cl.phonePort)
	case TypeCallSetupAck, TypeHangUp, TypeHangUpAck:
		i := ss.find(m.CallID)
		if i < 0 {
			return ReasonNoSession
		}
		cl := &ss.calls[i]
		switch m.Type {
		case TypeCallSetupAck:
			cl.acked = true
		case TypeHangUp:
			if !cl.ending {
				e.closeCall(cl, r)
				cl.ending = true
			}
		case TypeHangUpAck:
			if !cl.ending {
				e.closeCall(cl, r)
			}
			ss.ncalls--
			ss.calls[i] = ss.calls[ss.ncalls]
			ss.calls[ss.ncalls] = call{}
		}
	}
	return ReasonNone
}

func (ss *session) find(id uint32) int {
	for i := range ss.ncalls {
		if ss.calls[i].id == id {
			return i
		}
	}
	return -1
}

// pair returns the RTP and RTCP pinholes from src to dst:port.
func (e *Engine) pair(src, dst [4]byte, port uint16) [2]Pinhole {
	p := Pinhole{Proto: ProtoUDP, Src: src, Dst: dst, DstPort: port, Timeout: e.cfg.PinholeTimeout}
	q := p
	q.DstPort++
	return [2]Pinhole{p, q}
}

func (e *Engine) openPair(r *Result, src, dst [4]byte, port uint16) {
	p := e.pair(src, dst, port)
	r.Open = append(r.Open, p[:]...)
}

// closeCall closes every pinhole cl's setup opened.
func (e *Engine) closeCall(cl *call, r *Result) {
	for _, p := range [3][2]Pinhole{
		e.pair([4]byte{}, cl.phone, cl.phonePort),
		e.pair(cl.phone, cl.remote, cl.remotePort),
		e.pair(cl.remote, cl.phone, cl.phonePort),
	} {
		r.Close = append(r.Close, p[:]...)
	}
}

// closeSession closes the pinholes of all of ss's calls and of its pending
// MakeCall.
func (e *Engine) closeSession(ss *session, r *Result) {
	for i := range ss.ncalls {
		if !ss.calls[i].ending {
			e.closeCall(&ss.calls[i], r)
		}
	}
	if ss.pending {
		p := e.pair([4]byte{}, ss.pendingAddr, ss.pendingPort)
		r.Close = append(r.Close, p[:]...)
	}
}

// Forget removes connection k (the firewall's connection ended) and
// returns the pinholes to close.
func (e *Engine) Forget(k ConnKey) []Pinhole {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r Result
	if c := e.conns[k]; c != nil {
		e.closeSession(&c.sess, &r)
		delete(e.conns, k)
	}
	return r.Close
}

// Expire removes the connections idle for longer than the session idle
// time at now and returns the pinholes to close.
func (e *Engine) Expire(now time.Time) []Pinhole {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r Result
	e.expireLocked(now, &r)
	return r.Close
}

func (e *Engine) expireLocked(now time.Time, r *Result) {
	for k, c := range e.conns {
		if now.Sub(c.lastSeen) > e.cfg.SessionIdle {
			e.closeSession(&c.sess, r)
			delete(e.conns, k)
		}
	}
}

// Counters returns the engine's counters.
func (e *Engine) Counters() Counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counters
}

// Replicated reports [Replicated]: the engine's state is not replicated.
func (e *Engine) Replicated() bool { return Replicated }
