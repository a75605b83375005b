package ike

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Config is the responder's side of one crypto map entry.
type Config struct {
	// PSK is the pre-shared key both sides sign with (RFC 7296 §2.15).
	PSK []byte
	// LocalID is our IDr; the peer's IDi is accepted if the PSK verifies
	// and, when RemoteID is set, it matches.
	LocalID  Identity
	RemoteID *Identity
	// IKESuites and ChildSuites are what we accept, most preferred first.
	IKESuites   []Suite
	ChildSuites []ChildSuite
	// LocalNets and RemoteNets are the protected networks; the peer's
	// traffic selectors are narrowed to them (RFC 7296 §2.9).
	LocalNets, RemoteNets []netip.Prefix
	// Rand is the randomness source; nil means crypto/rand.
	Rand io.Reader
	// MaxHalfOpen bounds the SAs waiting for IKE_AUTH (0: 1024). Past it
	// the oldest is forgotten, so a flood of IKE_SA_INIT cannot grow the
	// table without bound (there are no cookies, RFC 7296 §2.6).
	MaxHalfOpen int
}

// Packet is one received IKE message with the addresses it came between.
// Data excludes the non-ESP marker of port 4500.
type Packet struct {
	Data          []byte
	Local, Remote netip.AddrPort
}

// EventKind says what happened to an SA.
type EventKind uint8

// Events for the caller (the data plane installs and removes child SAs).
const (
	EventIKEUp EventKind = iota + 1
	EventIKEDown
	EventIKERekeyed // IKE names the old SA's SPIr, NewIKE the new one
	EventChildUp
	EventChildRekeyed // Child is the new SA; OldChild the one it replaces
	EventChildDown
)

func (k EventKind) String() string {
	return [...]string{"?", "ike-up", "ike-down", "ike-rekeyed", "child-up", "child-rekeyed", "child-down"}[min(int(k), 6)]
}

// Event reports a change of an IKE or child SA.
type Event struct {
	Kind     EventKind
	IKE      uint64 // SPIr of the IKE SA concerned
	NewIKE   uint64
	Child    ChildRecord
	OldChild ChildRecord
}

// Result is what Handle made of a packet.
type Result struct {
	// Reply is the message to send back to Packet.Remote from
	// Packet.Local (add the non-ESP marker on port 4500); nil if none.
	Reply []byte
	// Retransmit is set when Reply is a cached response resent unchanged.
	Retransmit bool
	// SA is the SPIr of the IKE SA the packet belonged to (0 if none);
	// Changed says its Record changed and should be replicated. Replicate
	// before sending Reply: a standby that takes over with a record older
	// than the reply the peer got expects the old message ID, drops the
	// peer's next request, and the peer's retransmissions end in a new
	// IKE_SA_INIT. A record that already holds the reply answers the
	// peer's retransmission with it (the reply lost with the old active).
	SA      uint64
	Changed bool
	Events  []Event
	// Err says why a packet was dropped or refused; nil if answered normally.
	Err error
}

// Errors for dropped requests.
var (
	ErrResponse   = errors.New("ike: a response to no request of ours")
	ErrUnknownSA  = errors.New("ike: no IKE SA with these SPIs")
	ErrMessageID  = errors.New("ike: message ID out of window")
	ErrExchange   = errors.New("ike: exchange not valid in this state")
	ErrAuthFailed = errors.New("ike: authentication failed")
)

// Responder holds the IKE SAs of one crypto map. It is not safe for
// concurrent use: the caller serialises Handle, Import and Remove.
type Responder struct {
	cfg      Config
	sas      map[uint64]*SA
	halfOpen map[halfOpenKey]uint64
	// halfOrder lists half-open SPIs oldest first; entries of SAs that
	// completed or went away are skipped and compacted lazily.
	halfOrder []uint64
}

// halfOpenKey finds an SA by the initiator's SPI and address, for an
// IKE_SA_INIT retransmission (it carries SPIr 0).
type halfOpenKey struct {
	spii uint64
	peer netip.AddrPort
}

// NewResponder returns a responder with no SAs.
func NewResponder(cfg Config) *Responder {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.MaxHalfOpen <= 0 {
		cfg.MaxHalfOpen = 1024
	}
	return &Responder{cfg: cfg, sas: map[uint64]*SA{}, halfOpen: map[halfOpenKey]uint64{}}
}

// SA returns the IKE SA with our SPI spir, or nil.
func (r *Responder) SA(spir uint64) *SA { return r.sas[spir] }

// SAs returns our SPIs of all established IKE SAs.
func (r *Responder) SAs() []uint64 {
	var out []uint64
	for spi, sa := range r.sas {
		if sa.Established() {
			out = append(out, spi)
		}
	}
	return out
}

// Import installs an established SA from a record (the standby's copy, or
// the new active's at takeover), replacing any SA with the same SPIr.
func (r *Responder) Import(rec Record) error {
	sa, err := saFromRecord(rec)
	if err != nil {
		return fmt.Errorf("ike: import SA %016x: %w", rec.SPIr, err)
	}
	r.sas[rec.SPIr] = sa
	return nil
}

// Remove forgets the SA with our SPI spir.
func (r *Responder) Remove(spir uint64) { delete(r.sas, spir) }

// Handle processes one received datagram. A malformed, forged or
// out-of-window message changes no state and yields Result.Err.
func (r *Responder) Handle(p Packet) Result {
	m, err := ParseMessage(p.Data)
	if err != nil {
		return Result{Err: err}
	}
	if m.IsResponse() {
		return r.handleMIDSyncResponse(m)
	}
	if m.Flags&FlagInitiator == 0 {
		// We only ever answer the original initiator of an SA; requests
		// from our side's role would be responses to ours.
		return Result{Err: fmt.Errorf("%w: request without the initiator flag", ErrExchange)}
	}
	if m.Exchange == ExchangeIKESAInit && m.SPIr == 0 {
		return r.handleInit(m, p)
	}
	sa := r.sas[m.SPIr]
	if sa == nil || sa.spii != m.SPIi {
		return Result{Err: ErrUnknownSA}
	}
	res := Result{SA: sa.spir}
	sk := find(m.Payloads, PayloadSK)
	if sk == nil || sa.in == nil {
		res.Err = ErrNoSK
		return res
	}
	inner, err := sa.in.open(m.Raw, *sk)
	if err != nil {
		res.Err = err
		return res
	}
	switch {
	case m.MessageID+1 == sa.nextID && sa.lastResp != nil:
		res.Reply, res.Retransmit = sa.lastResp, true
		return res
	case m.MessageID != sa.nextID:
		res.Err = fmt.Errorf("%w: got %d, expect %d", ErrMessageID, m.MessageID, sa.nextID)
		return res
	}
	return r.dispatch(sa, m, inner, p)
}

// dispatch runs the exchange of an authentic, in-window request.
func (r *Responder) dispatch(sa *SA, m *Message, inner []Payload, p Packet) Result {
	res := Result{SA: sa.spir}
	var reply []Payload
	inner, err := checkCritical(inner)
	var uc *UnsupportedCriticalError
	switch {
	case errors.As(err, &uc):
		reply = []Payload{notifyPayload(NotifyUnsupportedCritical, []byte{byte(uc.Type)})}
		res.Err = err
	case sa.state == stateHalfOpen && m.Exchange == ExchangeIKEAuth:
		reply, res.Events, err = r.handleAuth(sa, m, inner)
		res.Err = err
	case sa.state == stateHalfOpen:
		res.Err = fmt.Errorf("%w: %v before IKE_AUTH", ErrExchange, m.Exchange)
		return res
	case m.Exchange == ExchangeCreateChildSA:
		reply, res.Events, err = r.handleCreateChild(sa, inner)
		res.Err = err
	case m.Exchange == ExchangeInformational:
		reply, res.Events = r.handleInformational(sa, inner)
	default:
		res.Err = fmt.Errorf("%w: %v on an established SA", ErrExchange, m.Exchange)
		return res
	}
	h := Header{SPIi: sa.spii, SPIr: sa.spir, Exchange: m.Exchange, Flags: FlagResponse, MessageID: m.MessageID}
	out, err := sa.out.seal(h, reply, r.cfg.Rand)
	if err != nil {
		res.Err = err
		return res
	}
	// An authenticated request moves the peer's address: after NAT
	// detection the peer floats to port 4500 (RFC 7296 §2.23).
	sa.local, sa.peer = p.Local, p.Remote
	sa.nextID, sa.lastResp = m.MessageID+1, out
	res.Reply, res.Changed = out, true
	if sa.state == stateHalfOpen { // IKE_AUTH failed: forget the SA
		delete(r.sas, sa.spir)
		delete(r.halfOpen, halfOpenKey{sa.spii, sa.initPeer})
		res.Changed = false
	}
	for _, ev := range res.Events {
		if ev.Kind == EventIKEDown && ev.IKE == sa.spir {
			delete(r.sas, sa.spir)
		}
	}
	return res
}

// newSPI returns a random nonzero IKE SPI not in use.
func (r *Responder) newSPI() (uint64, error) {
	var b [8]byte
	for {
		if _, err := io.ReadFull(r.cfg.Rand, b[:]); err != nil {
			return 0, err
		}
		spi := binary.BigEndian.Uint64(b[:])
		if spi != 0 && r.sas[spi] == nil {
			return spi, nil
		}
	}
}

// newChildSPI returns a random ESP SPI above 255 (values up to 255 are
// reserved, RFC 4303 §2.1) not used by a child of any SA.
func (r *Responder) newChildSPI() (uint32, error) {
	var b [4]byte
	for {
		if _, err := io.ReadFull(r.cfg.Rand, b[:]); err != nil {
			return 0, err
		}
		spi := binary.BigEndian.Uint32(b[:])
		if spi > 255 && !r.childSPIUsed(spi) {
			return spi, nil
		}
	}
}

func (r *Responder) childSPIUsed(spi uint32) bool {
	for _, sa := range r.sas {
		for _, c := range sa.children {
			if c.InSPI == spi {
				return true
			}
		}
	}
	return false
}

// addHalfOpen records a new half-open SA and evicts the oldest ones past
// MaxHalfOpen.
func (r *Responder) addHalfOpen(sa *SA) {
	r.sas[sa.spir] = sa
	r.halfOpen[halfOpenKey{sa.spii, sa.initPeer}] = sa.spir
	r.halfOrder = append(r.halfOrder, sa.spir)
	for len(r.halfOpen) > r.cfg.MaxHalfOpen {
		spi := r.halfOrder[0]
		r.halfOrder = r.halfOrder[1:]
		if old := r.sas[spi]; old != nil && old.state == stateHalfOpen {
			delete(r.sas, spi)
			delete(r.halfOpen, halfOpenKey{old.spii, old.initPeer})
		}
	}
	if len(r.halfOrder) > 2*r.cfg.MaxHalfOpen {
		live := r.halfOrder[:0]
		for _, spi := range r.halfOrder {
			if old := r.sas[spi]; old != nil && old.state == stateHalfOpen {
				live = append(live, spi)
			}
		}
		r.halfOrder = live
	}
}
