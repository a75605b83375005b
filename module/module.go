package module

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// FlowKey names a TCP flow by its original direction: the client opened it
// to the server. It is comparable and holds no pointers (IPv4, as falab's
// data plane).
type FlowKey struct {
	Client, Server         [4]byte
	ClientPort, ServerPort uint16
}

// Dir is a segment's direction within its flow.
type Dir uint8

// Directions.
const (
	ToServer Dir = iota
	ToClient
)

// Flags are the TCP header flags the module reads.
type Flags uint8

// TCP flags, as in the header.
const (
	FIN Flags = 0x01
	SYN Flags = 0x02
	RST Flags = 0x04
	ACK Flags = 0x10
)

// Verdict is the module's answer for one segment; a drop's String is the
// name the firewall's drop counter shows.
type Verdict uint8

// Verdicts.
const (
	Pass           Verdict = iota
	DropDetected           // a signature was seen in this flow
	DropFailClose          // no state for the flow (or module down) and fail-close
	DropBufferFull         // out of order beyond the window or the buffer budget; the sender retransmits
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case DropDetected:
		return "ips-request"
	case DropFailClose:
		return "ips-fail-close"
	case DropBufferFull:
		return "ips-reassembly-full"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// FailMode decides segments the module cannot inspect.
type FailMode uint8

// Fail modes.
const (
	FailOpen FailMode = iota
	FailClose
)

func (f FailMode) String() string {
	if f == FailClose {
		return "fail-close"
	}
	return "fail-open"
}

// Signature is one byte string to find in a stream (either direction).
type Signature struct {
	Name    string
	Pattern []byte
}

// MaxPatternBytes bounds the signatures' total length (the automaton takes
// 1 KiB per byte).
const MaxPatternBytes = 16 * 1024

// Config configures a module. Zero limits get defaults.
type Config struct {
	Slot          string // the slot name "show module" prints (default "ips")
	Signatures    []Signature
	FailMode      FailMode
	MaxFlows      int           // default 65536
	Window        int           // out-of-order bytes per direction (default 64 KiB)
	MaxBuffered   int           // out-of-order bytes in all (default 16 MiB)
	IdleTimeout   time.Duration // default 1h, as "timeout conn"
	ClosedTimeout time.Duration // after RST or both FINs (default 10s)
}

// ErrConfig is returned by New for an unusable configuration.
var ErrConfig = errors.New("module: bad configuration")

const nShards = 16

// Module is one unit's inspection engine.
//
// Concurrency: Segment, Expire, Stats and the other methods are safe for
// concurrent use. Flows are split over nShards shards by key; each shard's
// lock guards its flows, LRU list and counters, so segments of different
// flows rarely contend.
type Module struct {
	cfg   Config
	match *matcher
	up    atomic.Bool

	flows     atomic.Int64 // current, over all shards
	mostFlows atomic.Int64
	downPkts  atomic.Uint64 // segments met while down

	shards [nShards]shard
}

type shard struct {
	mu       sync.Mutex
	flows    map[FlowKey]*flow // guarded by mu
	lru      flow              // guarded by mu; sentinel: lru.next is the most recent
	buffered int               // guarded by mu; out-of-order bytes held
	st       counters          // guarded by mu
}

type counters struct {
	Packets, Bytes, Detected, DetectedDrops   uint64
	UninspectedFlows, UninspectedPackets      uint64
	FailCloseDrops, Retransmits, OutOfOrder   uint64
	BufferFullDrops, Evicted, Expired, Closed uint64
}

type flowState uint8

const (
	clean       flowState = iota // inspected, nothing found so far
	detected                     // a signature was seen
	uninspected                  // joined mid-stream
)

type flow struct {
	key        FlowKey
	state      flowState
	sig        int // the signature seen, when detected
	closed     bool
	isn        uint32 // the client's initial sequence number, if opened here
	lastSeen   int64  // UnixNano
	dir        [2]stream
	prev, next *flow // LRU list
}

type stream struct {
	synced bool
	fin    bool
	next   uint32 // next expected sequence number
	match  int32  // automaton state after the inspected bytes
	ooo    []pending
	held   int // bytes in ooo
}

type pending struct {
	seq  uint32
	data []byte
}

// New returns a module that is up, with no flows.
func New(cfg Config) (*Module, error) {
	if cfg.Slot == "" {
		cfg.Slot = "ips"
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxFlows, 65536)
	def(&cfg.Window, 64*1024)
	def(&cfg.MaxBuffered, 16<<20)
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Hour
	}
	if cfg.ClosedTimeout <= 0 {
		cfg.ClosedTimeout = 10 * time.Second
	}
	if cfg.MaxFlows < nShards {
		cfg.MaxFlows = nShards
	}
	total := 0
	pats := make([][]byte, len(cfg.Signatures))
	for i, s := range cfg.Signatures {
		if len(s.Pattern) == 0 {
			return nil, fmt.Errorf("%w: signature %q is empty", ErrConfig, s.Name)
		}
		total += len(s.Pattern)
		pats[i] = s.Pattern
	}
	if total > MaxPatternBytes {
		return nil, fmt.Errorf("%w: signatures total %d bytes, limit %d", ErrConfig, total, MaxPatternBytes)
	}
	m := &Module{cfg: cfg, match: compile(pats)}
	m.up.Store(true)
	for i := range m.shards {
		sh := &m.shards[i]
		sh.flows = make(map[FlowKey]*flow)
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
	}
	return m, nil
}

// Config returns the module's configuration with defaults filled in.
func (m *Module) Config() Config { return m.cfg }

// SetUp sets the module's health; while down every segment follows the
// fail mode.
func (m *Module) SetUp(up bool) { m.up.Store(up) }

// Up reports the module's health.
func (m *Module) Up() bool { return m.up.Load() }

func (m *Module) failVerdict() Verdict {
	if m.cfg.FailMode == FailClose {
		return DropFailClose
	}
	return Pass
}

func (m *Module) shard(k FlowKey) *shard {
	h := uint32(k.ClientPort)*0x9e3779b1 ^ uint32(k.ServerPort)*0x85ebca6b ^
		(uint32(k.Client[0])|uint32(k.Client[1])<<8|uint32(k.Client[2])<<16|uint32(k.Client[3])<<24)*0xc2b2ae35 ^
		(uint32(k.Server[0]) | uint32(k.Server[1])<<8 | uint32(k.Server[2])<<16 | uint32(k.Server[3])<<24)
	return &m.shards[(h^h>>16)%nShards]
}
