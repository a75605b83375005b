package firewall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/falab/falab/busyloop"
	"github.com/falab/falab/firewall/header"
)

// EtherTypeFailover is the EtherType of failover hellos sent on data
// interfaces (the ASA uses its own; 0x88B5 is the IEEE local experimental one).
const EtherTypeFailover uint16 = 0x88B5

const (
	readBatchSize        = 64
	defaultMaintainEvery = 100 * time.Millisecond
	sweepShardsPerCall   = 32   // a full connection sweep every 8 Maintain calls
	xlateSweepPerCall    = 4096 // xlates looked at per Maintain call
	icmpErrorsPerSecond  = 10
)

// Options are the firewall's collaborators.
type Options struct {
	Clock  Clock        // nil: the system clock
	Logger *slog.Logger // nil: discard
	// OnChange receives every change of a replicated table, on the
	// goroutine that made it (often a packet reader), with the lock of
	// the entry's key held and the firewall's change lock held shared
	// (see DigestsLocked). Several goroutines may call it at once, for
	// different keys; the changes of one key come one at a time, in
	// order. It must be quick, safe for concurrent use and must not block
	// (queue the record, do not send it), and must not call back into the
	// firewall (ApplyChange, Digest, DigestsLocked, SnapshotChunk or the
	// listing methods would deadlock).
	OnChange func(Change)
	// Replicated, when set, says which changes are replicated at all:
	// the others are neither reported to OnChange nor counted in the
	// digests (e.g. HTTP connections while HTTP replication is off, as on
	// an ASA), so that both units' digests cover the same entries. It
	// must give the same answer for every change of one entry.
	Replicated func(Change) bool
	// MaintainInterval is how often Run calls Maintain; 0 means 100ms.
	MaintainInterval time.Duration
}

// Firewall is one unit's data plane. See the package comment for its
// concurrency contract; every exported method is safe for concurrent use
// except Attach, which must precede Run.
type Firewall struct {
	log        *slog.Logger
	clock      Clock
	onChange   func(Change)
	replicated func(Change) bool
	maintain   time.Duration

	// Immutable after New.
	ifs       []*iface
	byName    map[string]int
	routes    []route
	statics   []staticNAT
	pats      []patRule
	timeouts  Timeouts
	randomSeq bool // TCP sequence number randomization
	limits    limits
	sanity    sanityRules

	// Transparent mode (see bridge.go); immutable after New.
	transparent    bool
	mgmtPrefix     netip.Prefix
	mgmtAddr       [4]byte
	hasMgmt        bool
	mgmtStandby    [4]byte
	hasMgmtStandby bool
	allowEther     []uint16

	active atomic.Bool

	conns     connTable
	xlates    xlateTable
	embryonic embryonicTable
	arp       arpTable
	bridge    bridgeTable

	inspection inspection // inspection engines and their pinholes (inspect.go)
	box        *boxState  // the unit's own IP stack (box.go); nil: none. Set before Run

	// IPsec (ipsec.go): the crypto ACLs are immutable after New; the SA
	// table is a snapshot swapped under ipsecMu.
	cryptoRules []cryptoRule
	ipsec       atomic.Pointer[ipsecTable]
	ipsecMu     sync.Mutex
	ipsecID     atomic.Uint32 // IP id of outer ESP headers

	module      ServiceModule // the service module, or nil (module.go); set before Run
	moduleClass []ace         // the connections diverted to it

	uauth *uauthState // cut-through proxy authentication (uauth.go), or nil; set before Run

	// changeMu orders changes against digest markers, not against each
	// other: commit holds it shared (changes of different keys, each
	// under its own table lock, go on in parallel), DigestsLocked holds it
	// exclusively, so that no change is half done (digest moved, record
	// not yet handed to OnChange) while the digests are read.
	changeMu sync.RWMutex
	digests  [numTables]atomic.Uint64 // added to under changeMu held shared

	drops   [numDropReasons]atomic.Uint64
	control atomic.Pointer[controlHandler]
	lease   atomic.Int64 // unix ns until which the active may forward; 0: no lease (RenewLease)

	sweepMu      sync.Mutex
	sweepCursor  int     // guarded by sweepMu
	sweepScratch []*conn // guarded by sweepMu

	icmpMu     sync.Mutex
	icmpTokens float64 // guarded by icmpMu
	icmpLast   int64   // guarded by icmpMu

	// Reassembly (fragment.go): the limits are immutable after New.
	fragLimits FragmentLimits
	fragMem    atomic.Int64 // bytes of buffers held by every interface's fragQueue
	smallBufs  sync.Pool    // *packetBuf of smallBufSize, for held fragments

	workers sync.Pool // *worker
	bufs    sync.Pool // *packetBuf of MaxFrameSize
	running atomic.Bool
}

type controlHandler struct {
	ethertype uint16
	h         func(iface string, src [6]byte, payload []byte)
}

// ifaceCounters are one interface's counters.
type ifaceCounters struct {
	rxPackets, rxBytes atomic.Uint64
	txPackets, txBytes atomic.Uint64
	drops              atomic.Uint64
}

// packetBuf holds a frame the firewall generated or queued: MaxFrameSize
// bytes from getBuf, or smallBufSize from getBufFor a short frame.
type packetBuf struct {
	data []byte
	n    int
}

// smallBufSize is the size of the pooled buffers that hold frames of an
// MTU of 1500 or less (fragments awaiting reassembly), so that those do
// not each pin a jumbo-sized buffer.
const smallBufSize = 2048

// New validates cfg and returns a standby firewall (SetActive makes it
// forward). Static NAT xlates exist from the start on both units, so they
// enter the digest without being reported to OnChange.
func New(cfg Config, opt Options) (*Firewall, error) {
	f := &Firewall{clock: opt.Clock, log: opt.Logger, maintain: opt.MaintainInterval}
	if f.clock == nil {
		f.clock = systemClock{}
	}
	if f.log == nil {
		f.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if f.maintain <= 0 {
		f.maintain = defaultMaintainEvery
	}
	if err := f.compile(cfg); err != nil {
		return nil, err
	}
	f.conns.init()
	f.xlates.init()
	f.embryonic.init()
	f.arp.init()
	f.bridge.init()
	f.bufs.New = func() any { return &packetBuf{data: make([]byte, MaxFrameSize)} }
	f.smallBufs.New = func() any { return &packetBuf{data: make([]byte, smallBufSize)} }
	f.workers.New = func() any { return newWorker(f) }
	f.icmpTokens = icmpErrorsPerSecond
	now := f.now()
	for _, s := range f.statics {
		sh := f.xlates.shardOf(s.real)
		sh.mu.Lock()
		_, err := f.upsertXlateLocked(sh, XlateRecord{Kind: NATStatic, Real: s.real, Mapped: s.mapped,
			RealInterface: f.ifs[s.realIf].name, MappedInterface: f.ifs[s.mappedIf].name, Created: now})
		sh.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	f.onChange = opt.OnChange
	f.replicated = opt.Replicated
	return f, nil
}

func (f *Firewall) now() int64 { return f.clock.Now().UnixNano() }

func (f *Firewall) getBuf() *packetBuf { return f.bufs.Get().(*packetBuf) }

// getBufFor returns a buffer of at least n bytes, the smallest pooled one.
func (f *Firewall) getBufFor(n int) *packetBuf {
	if n <= smallBufSize {
		return f.smallBufs.Get().(*packetBuf)
	}
	return f.getBuf()
}

func (f *Firewall) putBuf(b *packetBuf) {
	b.n = 0
	if len(b.data) == smallBufSize {
		f.smallBufs.Put(b)
		return
	}
	f.bufs.Put(b)
}

// InterfaceIndex returns the index HandleFrame takes for a named interface.
func (f *Firewall) InterfaceIndex(name string) (int, bool) {
	i, ok := f.byName[name]
	return i, ok
}

// Attach gives the firewall the Port of a configured interface. It must be
// called before Run; Run then owns the port and closes it when it returns.
func (f *Firewall) Attach(name string, p Port) error {
	i, ok := f.byName[name]
	if !ok {
		return fmt.Errorf("attach: no interface %q in the config", name)
	}
	if f.running.Load() {
		return fmt.Errorf("attach %q: firewall already running", name)
	}
	f.ifs[i].port = p
	if op, ok := p.(OffloadPort); ok && op.VNetHdr() {
		f.ifs[i].offload = op
	}
	return nil
}

// AttachARP gives interface name a second port that receives only its ARP
// (an AF_PACKET socket bound to the ARP EtherType has its own kernel
// queue). ARP is then read by its own goroutine and never waits behind, or
// is dropped with, a saturated data ring: a host asking for its gateway
// during a flood still gets its answer. Routed mode only (a transparent
// unit bridges ARP in order with the data). Call before Run.
func (f *Firewall) AttachARP(name string, p Port) error {
	i, ok := f.byName[name]
	if !ok {
		return fmt.Errorf("attach ARP: no interface %q in the config", name)
	}
	if f.running.Load() {
		return fmt.Errorf("attach ARP %q: firewall already running", name)
	}
	if f.transparent {
		return fmt.Errorf("attach ARP %q: transparent mode bridges ARP with the data", name)
	}
	f.ifs[i].arpPort = p
	return nil
}

// Run reads every attached port on its own goroutine and runs Maintain
// periodically, until ctx is done or a port fails. It then closes the
// ports, waits for all its goroutines and returns nil, or the first port
// error.
func (f *Firewall) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("firewall: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2*len(f.ifs))
	for _, it := range f.ifs {
		if it.port == nil {
			continue
		}
		wg.Go(func() {
			if err := f.readLoop(it, it.port, false); ctx.Err() == nil {
				errc <- fmt.Errorf("interface %s: %w", it.name, err)
				cancel()
			}
		})
		if it.arpPort != nil {
			wg.Go(func() {
				if err := f.readLoop(it, it.arpPort, true); ctx.Err() == nil {
					errc <- fmt.Errorf("interface %s ARP port: %w", it.name, err)
					cancel()
				}
			})
		}
	}
	if f.box != nil {
		wg.Go(func() {
			if err := f.boxLoop(); ctx.Err() == nil { // boxLoop ends only with an error (the box closed)
				errc <- fmt.Errorf("box: %w", err)
				cancel()
			}
		})
	}
	wg.Go(func() {
		t := time.NewTicker(f.maintain)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.Maintain()
			}
		}
	})
	<-ctx.Done()
	if f.box != nil {
		if err := f.box.dev.Close(); err != nil {
			f.log.Warn("closing box", "err", err)
		}
	}
	for _, it := range f.ifs {
		for _, p := range []Port{it.port, it.arpPort} {
			if p != nil {
				if err := p.Close(); err != nil {
					f.log.Warn("closing port", "interface", it.name, "err", err)
				}
			}
		}
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// readLoop is the reader goroutine of one port: read a batch, run each
// frame through the packet path in place, write what it produced. It
// returns only when a read fails (a closed port included), with that error.
func (f *Firewall) readLoop(it *iface, port Port, arpOnly bool) error {
	if it.offload != nil && !arpOnly {
		return f.readOffloadLoop(it)
	}
	bufs := make([][]byte, readBatchSize)
	for i := range bufs {
		bufs[i] = make([]byte, MaxFrameSize)
	}
	sizes := make([]int, readBatchSize)
	w := f.workers.New().(*worker)
	w.fromARPPort = arpOnly
	for {
		n, err := port.ReadBatch(bufs, sizes)
		if err != nil {
			return err
		}
		w.now = f.now()
		for i := range n {
			w.handle(it.idx, bufs[i][:sizes[i]])
		}
		w.flush()
		yieldBetweenBatches(n, len(bufs))
	}
}

// readOffloadLoop is readLoop for an OffloadPort: each frame comes with
// its virtio_net_hdr, and may be a super-frame. A port that lends its
// receive memory (inPlaceReader) is read without copying.
func (f *Firewall) readOffloadLoop(it *iface) error {
	if ip, ok := it.offload.(inPlaceReader); ok {
		return f.readInPlaceLoop(it, ip)
	}
	bufs := make([][]byte, readBatchSize)
	hdrs := make([][]byte, readBatchSize)
	for i := range bufs {
		bufs[i] = make([]byte, MaxOffloadFrameSize)
		hdrs[i] = make([]byte, vnetHdrLen)
	}
	sizes := make([]int, readBatchSize)
	w := f.workers.New().(*worker)
	for {
		n, err := it.offload.ReadBatchVNet(bufs, sizes, hdrs)
		if err != nil {
			return err
		}
		w.now = f.now()
		for i := range n {
			w.handleOffload(it.idx, hdrs[i], bufs[i][:sizes[i]])
		}
		w.flush()
		yieldBetweenBatches(n, len(bufs))
	}
}

// inPlaceReader is an OffloadPort that lends its receive memory
// (afpacket.Port.ReadInPlace): frames[i] and hdrs[i] are valid, and
// writable, until Release, which is called once the batch is written.
type inPlaceReader interface {
	ReadInPlace(frames, hdrs [][]byte) (int, error)
	Release()
}

// readInPlaceLoop is readOffloadLoop on frames in the port's own memory.
// Nothing in the path keeps a frame past flush (what waits, for ARP or
// reassembly, is copied), so Release after flush is safe.
func (f *Firewall) readInPlaceLoop(it *iface, port inPlaceReader) error {
	frames := make([][]byte, readBatchSize)
	hdrs := make([][]byte, readBatchSize)
	w := f.workers.New().(*worker)
	for {
		n, err := port.ReadInPlace(frames, hdrs)
		if err != nil {
			return err
		}
		w.now = f.now()
		for i := range n {
			w.handleOffload(it.idx, hdrs[i], frames[i])
		}
		w.flush()
		port.Release()
		yieldBetweenBatches(n, len(frames))
	}
}

// yieldBetweenBatches lets the unit's other goroutines run after a batch
// of n frames (of at most batch): after a full one, and after any once a
// network poll is due (busyloop). A reader whose ring never empties never
// blocks, and a unit runs its Go code on one CPU
// (labfile.DefaultUnitCPUs): without a yield its hello timers and
// replication sender would wait for the runtime's preemption, about 10
// ms, behind a saturated data path, and its sockets for the runtime's
// next poll of the network, as long.
func yieldBetweenBatches(n, batch int) {
	if n == batch || busyloop.Due() {
		busyloop.Yield()
	}
}

// HandleFrame runs one frame that arrived on interface ingress (its index
// in Config.Interfaces) through the whole packet path, synchronously: any
// frames it produces are written to the attached ports before it returns.
// The frame is modified in place and not retained.
func (f *Firewall) HandleFrame(ingress int, frame []byte) {
	w := f.workers.Get().(*worker)
	w.now = f.now()
	w.handle(ingress, frame)
	w.flush()
	f.workers.Put(w)
}

// Maintain does the firewall's timed work: incremental expiry of
// connections and PAT xlates and ageing of ARP and bridge entries (active
// only; the standby ages only the neighbours it learnt itself), and ARP
// retries and probes. Run calls it periodically; tests call it after advancing a
// ManualClock.
func (f *Firewall) Maintain() {
	w := f.workers.Get().(*worker)
	w.now = f.now()
	active := f.active.Load()
	if active {
		f.sweepConns(sweepShardsPerCall, w.now)
		f.sweepXlates(xlateSweepPerCall, w.now)
		if f.transparent {
			f.sweepBridge(bridgeSweepShardsPerCall, w.now)
		}
	}
	w.maintainARP(active)
	f.sweepFragments(w.now)
	f.expireSteered(w.now)
	w.flush()
	f.workers.Put(w)
}

// SetActive switches the role. Active: owns the active addresses and
// ActiveMAC, answers ARP for them and for NAT mapped addresses, forwards
// and ages entries. Standby: answers ARP and ping only for the standby
// address with StandbyMAC, never forwards, never ages entries on its own.
// On becoming active every entry's last activity becomes now, so nothing
// idles out at the moment of takeover; ARP entries are then confirmed by
// unicast probes, since the standby never saw the hosts' ARP traffic. In transparent mode the active
// bridges from the (replicated) bridge table at once, and the standby
// blocks every data frame but those for its management standby address.
func (f *Firewall) SetActive(active bool) {
	was := f.active.Load()
	if active == was {
		return
	}
	if active {
		now := f.now()
		f.touchAllConns(now)
		f.touchAllXlates(now)
		f.touchAllARP(now)
		f.touchAllBridge(now)
	} else {
		f.dropAllPending()
	}
	f.active.Store(active)
	f.log.Info("data plane role changed", "active", active)
}

// Active reports the current role.
func (f *Firewall) Active() bool { return f.active.Load() }

// RenewLease lets the active forward until the given time (unix
// nanoseconds); 0 removes the lease. The unit renews it from the loop that
// owns its failover role, every poll, while that role says forward. If the
// process was frozen, the lease has lapsed by the time the packet readers
// run again, so the frames that queued up meanwhile are not forwarded by a
// unit whose peer may have taken over (they are dropped and counted,
// failover-lease-expired), until the role is settled and the lease renewed.
func (f *Firewall) RenewLease(until int64) { f.lease.Store(until) }

// forwarding reports whether the unit forwards at now: active, and within
// its lease if it has one.
func (f *Firewall) forwarding(now int64) bool {
	if !f.active.Load() {
		return false
	}
	l := f.lease.Load()
	return l == 0 || now < l
}

// Forwarding reports whether the data plane forwards now: active and
// within its lease. It is the data plane's own answer, which can differ
// from the role a unit last reported: a unit just thawed from a freeze
// says Active until its role loop runs, but its lease has lapsed.
func (f *Firewall) Forwarding() bool { return f.forwarding(f.now()) }

// notForwarding is the drop reason of a frame the unit does not forward:
// a standby's, or an active's whose lease lapsed.
func (f *Firewall) notForwarding() DropReason {
	if f.active.Load() {
		return DropLeaseExpired
	}
	return DropNotActive
}

// SendGratuitousARP announces the active addresses: per data interface one
// ARP request with sender = target = the active address and source
// ActiveMAC to broadcast, followed by one for each NAT mapped address
// proxied on that interface (so that hosts re-learn those too when the
// units do not share a virtual MAC).
//
// In transparent mode it sends, per data interface, one gratuitous ARP
// for the management address (if any) and then calls AnnounceBridge.
func (f *Firewall) SendGratuitousARP() {
	w := f.workers.Get().(*worker)
	w.now = f.now()
	if f.transparent {
		w.sendManagementGARP()
		w.flush()
		f.workers.Put(w)
		f.AnnounceBridge()
		return
	}
	for _, it := range f.ifs {
		if it.port == nil {
			continue
		}
		for _, ip := range append([][4]byte{it.addr}, it.proxyARP...) {
			b := f.getBuf()
			fr := buildARP(b, header.ARPRequest, broadcastMAC[:], it.activeMAC[:], ip, zeroMAC[:], ip)
			w.queue(it.idx, fr, b)
		}
	}
	w.flush()
	f.workers.Put(w)
}

// SetControlHandler delivers every frame of the given EtherType, whatever
// the role and destination MAC, to h with the interface name, the source
// MAC and the Ethernet payload (valid only during the call). A nil h
// removes it.
func (f *Firewall) SetControlHandler(ethertype uint16, h func(iface string, src [6]byte, payload []byte)) {
	if h == nil {
		f.control.Store(nil)
		return
	}
	f.control.Store(&controlHandler{ethertype: ethertype, h: h})
}

// SendControl sends payload in one Ethernet frame of the given EtherType to
// dst on interface iface, from the interface's MAC for the current role.
func (f *Firewall) SendControl(iface string, dst net.HardwareAddr, ethertype uint16, payload []byte) error {
	i, ok := f.byName[iface]
	if !ok {
		return fmt.Errorf("send control: no interface %q", iface)
	}
	it := f.ifs[i]
	if it.port == nil {
		return fmt.Errorf("send control: interface %q has no port", iface)
	}
	if len(dst) != 6 {
		return fmt.Errorf("send control: destination MAC %v is not 6 bytes", dst)
	}
	if len(payload) > MaxFrameSize-header.EthernetLen {
		return fmt.Errorf("send control: payload of %d bytes exceeds %d", len(payload), MaxFrameSize-header.EthernetLen)
	}
	fr := make([]byte, header.EthernetLen+len(payload))
	e := header.Ethernet(fr)
	e.SetDestination(dst)
	e.SetSource(f.ourMAC(it)[:])
	e.SetEtherType(ethertype)
	copy(e.Payload(), payload)
	var n int
	var err error
	if it.offload != nil {
		n, err = it.offload.WriteBatchVNet([][]byte{fr}, [][]byte{noOffload[:]})
	} else {
		n, err = it.port.WriteBatch([][]byte{fr})
	}
	if err == nil && n != 1 {
		err = errors.New("port accepted no frame")
	}
	if err != nil {
		return fmt.Errorf("send control on %q: %w", iface, err)
	}
	it.stats.txPackets.Add(1)
	it.stats.txBytes.Add(uint64(len(fr)))
	return nil
}

// commit records one change of a replicated table: it moves the table's
// digest from the entry's old hash to its new one (zero for none) and
// reports the change, both under changeMu held shared. Callers hold the
// lock of the entry's key (its table shard's, or its own), which keeps the
// changes of one key in order; changes of different keys may be reported
// concurrently, in any order.
func (f *Firewall) commit(c Change, oldHash, newHash uint64) {
	if !f.isReplicated(c) {
		return
	}
	c.First = c.Op == OpUpsert && oldHash == 0
	f.changeMu.RLock()
	f.digests[c.Table].Add(newHash - oldHash)
	if f.onChange != nil {
		f.onChange(c)
	}
	f.changeMu.RUnlock()
}

// Digest returns the order-independent digest of a replicated table: the
// sum of a 64-bit hash of each entry's replicated encoding (timestamps
// excluded). Equal entries on two units give equal digests. O(1).
func (f *Firewall) Digest(t Table) uint64 {
	if t >= numTables {
		return 0
	}
	return f.digests[t].Load()
}

// DigestsLocked calls fn with every table's digest while holding the
// change lock, so that no change is reported to OnChange during fn: a
// replication sender can pair the digests with its own sequence number.
func (f *Firewall) DigestsLocked(fn func(map[Table]uint64)) {
	f.changeMu.Lock()
	defer f.changeMu.Unlock()
	m := make(map[Table]uint64, len(Tables))
	for _, t := range Tables {
		m[t] = f.digests[t].Load()
	}
	fn(m)
}

// ApplyChange applies a change received from the peer through the same
// table methods the packet path uses (and so reports it to OnChange and
// the digest like a local change). Applying an upsert twice, or deleting
// what is not there, is harmless.
func (f *Firewall) ApplyChange(c Change) error {
	if c.Op != OpUpsert && c.Op != OpDelete {
		return fmt.Errorf("apply %s change: %w %d", c.Table, ErrChangeOp, c.Op)
	}
	switch c.Table {
	case TableConn:
		r := c.Conn
		if c.Op == OpDelete {
			if cn, _ := f.conns.lookup(r.Orig); cn != nil && cn.orig == r.Orig {
				f.deleteConn(cn)
			}
			return nil
		}
		if !validProto(r.Orig.Proto) || r.Reply.Proto != r.Orig.Proto {
			return fmt.Errorf("apply conn %v: %w: protocol", r.Orig, ErrChangeField)
		}
		cn, _, drop := f.insertConn(r, false)
		switch {
		case drop == DropNoPort:
			return fmt.Errorf("apply conn %v: unknown interface %q or %q", r.Orig, r.InInterface, r.OutInterface)
		case drop != dropNone:
			return fmt.Errorf("apply conn %v: %s", r.Orig, drop)
		}
		f.adoptConn(cn, r)
		return nil
	case TableXlate:
		r := c.Xlate
		if r.Kind != NATStatic && r.Kind != NATDynamicPAT {
			return fmt.Errorf("apply xlate: %w: kind %d", ErrChangeField, r.Kind)
		}
		s := f.xlates.shardOf(r.Real)
		s.mu.Lock()
		defer s.mu.Unlock()
		if c.Op == OpUpsert {
			_, err := f.upsertXlateLocked(s, r)
			return err
		}
		mi, ok := f.byName[r.MappedInterface]
		if !ok {
			return fmt.Errorf("apply xlate delete: unknown interface %q", r.MappedInterface)
		}
		k := xlateKey{kind: r.Kind, proto: r.Proto, real: r.Real, realPort: r.RealPort, mappedIf: uint8(mi)}
		if x := s.idx.get(k); x != nil {
			f.deleteXlateLocked(s, x)
		}
		return nil
	case TableARP:
		r := c.ARP
		f.arp.mu.Lock()
		defer f.arp.mu.Unlock()
		if c.Op == OpUpsert {
			return f.upsertARPLocked(r)
		}
		i, ok := f.byName[r.Interface]
		if !ok {
			return fmt.Errorf("apply arp delete: unknown interface %q", r.Interface)
		}
		f.deleteARPLocked(arpKey{uint8(i), r.IP})
		return nil
	case TableBridge:
		return f.applyBridge(c)
	}
	return fmt.Errorf("apply: %w %d", ErrChangeTable, c.Table)
}

// InterfaceInfo describes one interface and its counters for the API.
type InterfaceInfo struct {
	Name          string       `json:"name"`
	SecurityLevel int          `json:"security_level"`
	Address       netip.Prefix `json:"address"`
	StandbyAddr   netip.Addr   `json:"standby_address"`
	MAC           string       `json:"mac"`
	Attached      bool         `json:"attached"`
	RxPackets     uint64       `json:"rx_packets"`
	RxBytes       uint64       `json:"rx_bytes"`
	TxPackets     uint64       `json:"tx_packets"`
	TxBytes       uint64       `json:"tx_bytes"`
	Drops         uint64       `json:"drops"`
}

// InterfaceStats returns every interface with its counters, in config order.
func (f *Firewall) InterfaceStats() []InterfaceInfo {
	out := make([]InterfaceInfo, 0, len(f.ifs))
	for _, it := range f.ifs {
		in := InterfaceInfo{
			Name: it.name, SecurityLevel: it.sec, Address: it.prefix,
			MAC: net.HardwareAddr(f.ourMAC(it)[:]).String(), Attached: it.port != nil,
			RxPackets: it.stats.rxPackets.Load(), RxBytes: it.stats.rxBytes.Load(),
			TxPackets: it.stats.txPackets.Load(), TxBytes: it.stats.txBytes.Load(),
			Drops: it.stats.drops.Load(),
		}
		if it.hasStandby {
			in.StandbyAddr = netip.AddrFrom4(it.standby)
		}
		out = append(out, in)
	}
	return out
}

// RouteInfo describes one route for the API.
type RouteInfo struct {
	Interface string       `json:"interface"`
	Prefix    netip.Prefix `json:"prefix"`
	NextHop   netip.Addr   `json:"next_hop"` // zero for connected routes
	Connected bool         `json:"connected"`
}

// RoutesTable returns the routing table in lookup order (longest prefix first).
func (f *Firewall) RoutesTable() []RouteInfo {
	out := make([]RouteInfo, 0, len(f.routes))
	for _, r := range f.routes {
		ri := RouteInfo{Interface: f.ifs[r.ifIdx].name, Prefix: r.prefix, Connected: r.connected}
		if !r.connected {
			ri.NextHop = netip.AddrFrom4(r.nextHop)
		}
		out = append(out, ri)
	}
	return out
}

// Drops returns the non-zero drop counters by reason.
func (f *Firewall) Drops() map[DropReason]uint64 {
	m := make(map[DropReason]uint64)
	for r := DropReason(1); r < numDropReasons; r++ {
		if v := f.drops[r].Load(); v != 0 {
			m[r] = v
		}
	}
	return m
}

func addrPort(a [4]byte, p uint16) string {
	return netip.AddrPortFrom(netip.AddrFrom4(a), p).String()
}
