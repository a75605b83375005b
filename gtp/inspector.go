package gtp

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// GTP well-known ports (3GPP TS 29.060 §4.4).
const (
	ControlPort = 2123 // GTP-C
	UserPort    = 2152 // GTP-U
)

// Config is a gtp-map: the inspection's limits and timeouts.
type Config struct {
	// RequestQueue is the ASA's "request-queue": how many requests may
	// await their response at once. Zero means the ASA's default, 200.
	RequestQueue int
	// TunnelLimit is the ASA's "tunnel-limit": how many PDP contexts
	// (committed plus pending) may exist at once. Zero means 500.
	TunnelLimit int
	// PDPContextTimeout ("timeout pdp-context") removes a context idle for
	// that long; zero means 30 minutes.
	PDPContextTimeout time.Duration
	// GSNTimeout ("timeout gsn") forgets a GSN not heard from for that
	// long; zero means 30 minutes.
	GSNTimeout time.Duration
	// RequestTimeout ("timeout request") forgets a request never
	// answered; zero means 1 minute.
	RequestTimeout time.Duration
	// OnChange, if set, is called with every change of a committed
	// context, in order, while the inspector's lock is held: it must not
	// call back into the inspector. The caller sends the change to the
	// standby.
	OnChange func(Change)
}

// The ASA's default gtp-map. Cisco ASA Series Firewall CLI Configuration
// Guide, "GTP Inspection", "Defaults for GTP Inspection": "The maximum
// number of requests is 200. The maximum number of tunnels is 500. The GSN
// timeout is 30 minutes. The PDP context timeout is 30 minutes. The
// request timeout is 1 minute." (also the default map listed as
// "request-queue 200, timeout gsn 0:30:00, timeout pdp-context 0:30:00,
// timeout request 0:01:00" in the ASA 5500 Configuration Guide).
const (
	DefaultRequestQueue      = 200
	DefaultTunnelLimit       = 500
	DefaultPDPContextTimeout = 30 * time.Minute
	DefaultGSNTimeout        = 30 * time.Minute
	DefaultRequestTimeout    = time.Minute
)

func (c Config) withDefaults() Config {
	if c.RequestQueue <= 0 {
		c.RequestQueue = DefaultRequestQueue
	}
	if c.TunnelLimit <= 0 {
		c.TunnelLimit = DefaultTunnelLimit
	}
	if c.PDPContextTimeout <= 0 {
		c.PDPContextTimeout = DefaultPDPContextTimeout
	}
	if c.GSNTimeout <= 0 {
		c.GSNTimeout = DefaultGSNTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	return c
}

// teidKey names a tunnel endpoint: the receiving GSN's address and the TEID
// it chose. Comparable and pointer-free, a cheap map key.
type teidKey struct {
	addr [4]byte
	teid uint32
}

// pdpContext is a committed context.
type pdpContext struct {
	rec  Record
	hash uint64 // guarded by Inspector.mu: digest contribution of rec
	// G-PDUs passed towards the GGSN (upstream) and towards the SGSN
	// (downstream): atomic because User adds under the read lock.
	up, down atomic.Uint64
	// Guarded by Inspector.mu.
	signalUp, signalDown uint64 // signalling messages passed, from the SGSN and from the GGSN
	seenPackets          uint64 // up+down at the last sweep that saw them change
	lastSeen             int64  // unix nanoseconds of the last activity noticed; 0 until the first sweep or message
}

// controlRef is who owns a control-plane endpoint: the contexts of one MS
// share the GSNs' control TEIDs (a secondary context reuses its
// primary's).
type controlRef struct {
	imsi [8]byte
	refs int
}

// reqKey matches a response to its request: the requester's and the
// responder's addresses and the sequence number (TS 29.060 §7.6).
type reqKey struct {
	requester, responder [4]byte
	seq                  uint16
}

// request is an outstanding request. For a Create it holds the pending
// context; for an SGSN-initiated Update the SGSN's new addresses and TEIDs.
type request struct {
	msgType    uint8
	tid        TID
	rec        Record
	toGGSN     bool   // sent by the SGSN (Update, Delete)
	expectTEID uint32 // the response's header TEID: the requester's control TEID
	deadline   int64
}

// gsnEntry is what the inspector knows of a GSN (show ... statistics gsn).
type gsnEntry struct {
	lastSeen int64
}

// Inspector is one unit's GTP inspection state: the PDP context database,
// the outstanding requests and the GSNs heard from.
//
// Concurrency: all methods are safe for concurrent use. Control, Apply and
// Expire take the write lock; User takes the read lock and counts with
// atomics, so that G-PDUs of different contexts do not serialize.
type Inspector struct {
	cfg Config

	mu             sync.RWMutex
	contexts       map[TID]*pdpContext     // guarded by mu
	data           map[teidKey]*pdpContext // guarded by mu: (GSN data address, data TEID) of each committed context's two ends
	control        map[teidKey]controlRef  // guarded by mu: (GSN control address, control TEID)
	pending        map[reqKey]*request     // guarded by mu
	pendingCreates int                     // guarded by mu: Create requests in pending
	gsns           map[[4]byte]*gsnEntry   // guarded by mu
	digest         uint64                  // guarded by mu
	mostUsed       int                     // guarded by mu

	drops [numDropReasons]atomic.Uint64
}

// New returns an empty inspector; zero fields of cfg take the ASA's
// defaults.
func New(cfg Config) *Inspector {
	return &Inspector{
		cfg:      cfg.withDefaults(),
		contexts: make(map[TID]*pdpContext),
		data:     make(map[teidKey]*pdpContext),
		control:  make(map[teidKey]controlRef),
		pending:  make(map[reqKey]*request),
		gsns:     make(map[[4]byte]*gsnEntry),
	}
}

// Config returns the inspector's configuration with defaults filled in.
func (in *Inspector) Config() Config { return in.cfg }

// Drops returns how many messages were dropped for reason r.
func (in *Inspector) Drops(r DropReason) uint64 {
	if r >= numDropReasons {
		return 0
	}
	return in.drops[r].Load()
}

func (in *Inspector) count(v Verdict) Verdict {
	if !v.Pass() && v.Drop < numDropReasons {
		in.drops[v.Drop].Add(1)
	}
	return v
}

// Digest returns the order-independent digest of the committed contexts:
// the sum of their record hashes. Equal databases give equal digests.
func (in *Inspector) Digest() uint64 {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.digest
}

// Len returns the number of committed contexts.
func (in *Inspector) Len() int {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return len(in.contexts)
}

// Pending returns the number of outstanding requests.
func (in *Inspector) Pending() int {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return len(in.pending)
}

// GTP-U message types the user plane passes without a tunnel (TS 29.281).
const (
	msgEchoRequest      = 1
	msgEchoResponse     = 2
	msgErrorIndication  = 26
	msgSupportedExtHdrs = 31
	msgEndMarker        = 254
	msgGPDU             = 255
)

// GTPv1 header (TS 29.060 §6, TS 29.281 §5):
//
//	0: version(3) PT(1) spare(1) E(1) S(1) PN(1)
//	1: message type
//	2: length (octets after the first 8)
//	4: TEID
//	8: [sequence(2) N-PDU(1) next extension header type(1)] if E, S or PN
const (
	gtpHeaderLen    = 8
	gtpOptionalLen  = 4
	flagPT          = 0x10
	flagsOptional   = 0x07
	flagSeq         = 0x02
	gtpVersionShift = 5
)

// checkHeader validates the GTPv1 header of b: version 1, protocol type
// GTP (not GTP'), and a length that accounts for exactly the rest of b.
func checkHeader(b []byte) DropReason {
	if len(b) < gtpHeaderLen {
		return DropMalformed
	}
	if b[0]>>gtpVersionShift != 1 || b[0]&flagPT == 0 {
		return DropBadVersion
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if gtpHeaderLen+n != len(b) {
		return DropMalformed
	}
	if b[0]&flagsOptional != 0 && n < gtpOptionalLen {
		return DropMalformed
	}
	return dropNone
}

// User inspects a GTP-U datagram's UDP payload (UDP 2152) from src to dst.
// A G-PDU (or End Marker) passes only towards the (GSN data address, TEID)
// of a committed context; echo, Error Indication and Supported Extension
// Headers Notification pass. It changes nothing but counters, takes no
// write lock and allocates nothing.
func (in *Inspector) User(src, dst netip.AddrPort, payload []byte) Verdict {
	return in.count(in.user(dst, payload))
}

func (in *Inspector) user(dst netip.AddrPort, b []byte) Verdict {
	if r := checkHeader(b); r != dropNone {
		return drop(r)
	}
	switch b[1] {
	case msgGPDU, msgEndMarker:
	case msgEchoRequest, msgEchoResponse, msgErrorIndication, msgSupportedExtHdrs:
		return pass
	default:
		return drop(DropUnknownMessage)
	}
	d := dst.Addr()
	if !d.Is4() {
		return drop(DropUnknownTEID)
	}
	k := teidKey{addr: d.As4(), teid: binary.BigEndian.Uint32(b[4:])}
	in.mu.RLock()
	c := in.data[k]
	if c != nil {
		if k.addr == c.rec.GGSNData && k.teid == c.rec.GGSNDataTEID {
			c.up.Add(1)
		} else {
			c.down.Add(1)
		}
	}
	in.mu.RUnlock()
	if c == nil {
		return drop(DropUnknownTEID)
	}
	return pass
}
