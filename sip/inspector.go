package sip

import (
	"fmt"
	"sync"
	"time"
)

// IP protocol numbers a Pinhole names.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// Pinhole is a media flow the inspector expects: the firewall admits the
// first new flow that matches it. It has the fields of the firewall's
// Pinhole so that the caller converts one to the other field by field.
type Pinhole struct {
	Proto   uint8
	Src     [4]byte // the expected initiator; zero: any
	Dst     [4]byte // the expected responder: the address in c=
	DstPort uint16  // the port in m= (RTP) or that port + 1 (RTCP)
	Timeout time.Duration
}

// key is a pinhole's identity in the table (the timeout is not part of it).
func (p Pinhole) key() Pinhole { p.Timeout = 0; return p }

// State is a session's state.
type State uint8

// Session states.
const (
	StateInviteSent  State = iota + 1 // INVITE seen, no response with a To tag yet
	StateEarly                        // a provisional response with a To tag
	StateConfirmed                    // 2xx to the INVITE
	StateTerminating                  // BYE seen, its final response not yet
	StateEnded                        // BYE answered or INVITE refused; kept for sip-disconnect so retransmissions pass
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateInviteSent:
		return "invite-sent"
	case StateEarly:
		return "early"
	case StateConfirmed:
		return "confirmed"
	case StateTerminating:
		return "terminating"
	case StateEnded:
		return "ended"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Side says which party of a dialog sent something.
type Side uint8

// Sides of a dialog.
const (
	SideCaller Side = iota // the party that sent the initial INVITE
	SideCallee
)

// Session is the replicated record of one SIP session (dialog).
type Session struct {
	CallID    string
	CallerTag string // From tag of the initial INVITE
	CalleeTag string // To tag of the first response that carried one
	State     State
}

// Transaction is the replicated record of one transaction.
type Transaction struct {
	Branch    string // top Via branch of the request
	Method    string // CSeq method
	CSeq      uint32
	CallID    string
	Completed bool // a final response was seen; kept so retransmissions pass
}

// PinholeRecord is the replicated record of one pinhole: which session
// and which party's SDP asked for it.
type PinholeRecord struct {
	CallID  string
	Side    Side
	Pinhole Pinhole
}

// Config holds the inspector's timeouts and limits. Zero fields take the
// defaults, which are the ASA's (see DefaultConfig).
type Config struct {
	SIPTimeout        time.Duration // "timeout sip": an established session's idle timeout
	MediaTimeout      time.Duration // "timeout sip_media": how long a media pinhole waits
	InviteTimeout     time.Duration // "timeout sip-invite": a session or transaction awaiting its final response
	DisconnectTimeout time.Duration // "timeout sip-disconnect": how long an ended session lingers after BYE or a refusal
	TransactionLinger time.Duration // a completed transaction kept for retransmissions (RFC 3261 Timer B/F: 64*T1)
	MaxSessions       int
	MaxTransactions   int
	MaxPinholes       int
}

// DefaultConfig returns the ASA's default timeouts, as an ASA with none
// configured prints them in "show running-config" ("timeout sip 0:30:00
// sip_media 0:02:00 sip-invite 0:03:00 sip-disconnect 0:02:00"; seen in
// many published ASA configurations, e.g. the ASA fixture of
// ciscoconfparse's tests; the Cisco configuration guide, "Configuring SIP
// Timeout Values", gives the 2-minute media timeout), RFC 3261's 32 s for
// a completed transaction, and table limits. The ASA's separate
// "sip-provisional-media" timeout is not modelled: early media pinholes
// wait for sip_media like the others.
func DefaultConfig() Config {
	return Config{
		SIPTimeout:        30 * time.Minute,
		MediaTimeout:      2 * time.Minute,
		InviteTimeout:     3 * time.Minute,
		DisconnectTimeout: 2 * time.Minute,
		TransactionLinger: 32 * time.Second,
		MaxSessions:       4096,
		MaxTransactions:   8192,
		MaxPinholes:       4096,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	for _, p := range [...]struct{ v, def *time.Duration }{
		{&c.SIPTimeout, &d.SIPTimeout}, {&c.MediaTimeout, &d.MediaTimeout}, {&c.InviteTimeout, &d.InviteTimeout},
		{&c.DisconnectTimeout, &d.DisconnectTimeout}, {&c.TransactionLinger, &d.TransactionLinger},
	} {
		if *p.v <= 0 {
			*p.v = *p.def
		}
	}
	for _, p := range [...]struct{ v, def *int }{
		{&c.MaxSessions, &d.MaxSessions}, {&c.MaxTransactions, &d.MaxTransactions}, {&c.MaxPinholes, &d.MaxPinholes},
	} {
		if *p.v <= 0 {
			*p.v = *p.def
		}
	}
	return c
}

type session struct {
	rec      Session
	lastSeen int64 // unix nanoseconds, local to this unit
}

type txKey struct{ branch, method string }

type transaction struct {
	rec      Transaction
	lastSeen int64
}

// Stats are the inspector's counters, local to each unit.
type Stats struct {
	Packets    uint64 // SIP payloads inspected (empty payloads and keepalives not counted)
	Drops      [numDropReasons]uint64
	Sessions   uint64 // sessions created
	Pinholes   uint64 // pinholes opened
	MostInUse  int    // the most sessions at once
	Requests   uint64
	Responses  uint64
	Expired    uint64 // sessions removed by Expire
	Standby    uint64 // changes applied from the active
	ApplyError uint64 // changes Apply refused
}

// Inspector is the SIP inspection engine: its session, transaction and
// pinhole tables. Its methods may be called from several goroutines; one
// mutex serialises them (SIP is signalling, a few packets per call, not
// the media fast path).
type Inspector struct {
	cfg Config

	mu       sync.Mutex
	sessions map[string]*session        // guarded by mu, by Call-ID
	txs      map[txKey]*transaction     // guarded by mu
	pins     map[Pinhole]*PinholeRecord // guarded by mu, by Pinhole.key()
	stats    Stats                      // guarded by mu
}

// New returns an inspector with empty tables.
func New(cfg Config) *Inspector {
	return &Inspector{
		cfg:      cfg.withDefaults(),
		sessions: make(map[string]*session),
		txs:      make(map[txKey]*transaction),
		pins:     make(map[Pinhole]*PinholeRecord),
	}
}

// Config returns the configuration in use, defaults filled in.
func (in *Inspector) Config() Config { return in.cfg }

// Result is what Inspect decided about one payload.
type Result struct {
	Drop    DropReason // zero: forward the packet
	Open    []Pinhole  // pinholes to open
	Close   []Pinhole  // pinholes to close (and media flows they admitted to end)
	Changes []Change   // replication records, in order
}

// Pass reports whether the packet may be forwarded.
func (r *Result) Pass() bool { return r.Drop == dropNone }

// Stats returns a copy of the counters.
func (in *Inspector) Stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stats
}
