// Package unit is one firewall unit's process: it wires the data plane
// (package firewall, on AF_PACKET ports), the role state machine (package
// failover) and the state stream (package replicate) together, performs the
// machine's actions (hellos on the failover link, takeover, gratuitous ARP,
// data-interface probes), and serves the unit's local API on a Unix socket
// in package api's wire types (the client is api.Client).
// It must not import lab, scenario, tui or cmd/falab: a unit is started by
// them and knows nothing of lab files or screens.
package unit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/ctiqbe"
	"github.com/falab/falab/failover"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/fwconfig"
	"github.com/falab/falab/gtp"
	"github.com/falab/falab/module"
	"github.com/falab/falab/replicate"
	"github.com/falab/falab/uauth"
)

// garpSchedule is when the new active repeats its gratuitous ARPs after a
// takeover: at once, then spaced, so that a host or switch that missed one
// (a busy CPU, a full queue) still learns the new active within a second.
var garpSchedule = []time.Duration{0, 10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond, time.Second}

// Unit is one running firewall unit.
//
// Concurrency: one goroutine (drive) owns the failover machine; everything
// else talks to it through channels. The firewall is safe for concurrent
// use. The current sender and receiver are swapped atomically.
type Unit struct {
	cfg     *Config
	log     *slog.Logger
	events  *EventLog
	fw      *firewall.Firewall
	key     replicate.Key
	tables  []uint8        // replicated table ids in bulk order: the firewall's, then engines'
	engines []engineTable  // inspection engines' replicated tables (AddEngineTable)
	gtp     *gtp.Inspector // GTP inspection (engine_gtp.go); nil when off
	locals  []localTable   // tables kept off the state link (AddLocalTable), for the replication view

	unreplicated cached[int]             // connections policy keeps local, for the replication view (view.go)
	moduleStats  cached[*api.ModuleInfo] // the module's counters for statuses (engine_module.go)

	module *module.Module // the security service module, or nil (engine_module.go)

	uauth         *uauth.Table          // cut-through proxy authentication, or nil (engine_uauth.go)
	uauthCfg      *fwconfig.UAuthConfig // its configuration
	uauthSteering bool                  // the firewall steers to the listener (the unit has its own stack)
	box           *box                  // the unit's own IP stack (box.go); nil: none
	vpn           *ipsecEngine          // the crypto maps' IKE responders (engine_ipsec.go); nil: none
	sip           *sipEngine            // SIP inspection (engine_sip.go); nil when off
	ctiqbe        *ctiqbe.Engine        // CTIQBE inspection, the lab model (engine_ctiqbe.go); nil when off

	machine *failover.Machine // owned by drive
	evq     *eventQueue
	cmds    chan command

	sender   atomic.Pointer[replicate.Sender]
	receiver atomic.Pointer[replicate.Receiver]
	active   atomic.Bool
	// role is the machine's state (a failover.State), for the answers
	// to interface hellos, which the prober sends from its own goroutine.
	role atomic.Uint32

	helloConn *net.UDPConn
	stateLn   net.Listener
	probes    *prober
	// control holds each data interface's own socket for interface
	// hellos (AttachControl); without one they share the data ring.
	control map[string]*controlPort

	// Hellos: sealed under this boot's epoch; the peer's are checked
	// against helloWindow, and refusals counted by reason.
	helloOut     *sealer
	helloIn      *opener
	helloWindow  window
	helloRejects rejectCounters
	helloDelay   replicate.DelayWindow // accepted hellos, sent to read

	statusMu   sync.Mutex
	status     failover.Status             // guarded by statusMu: refreshed by drive
	history    []failover.Transition       // guarded by statusMu: newest last
	linkStatus failover.FailoverLinkStatus // guarded by statusMu
	startedAt  time.Time

	// Every goroutine the unit starts is counted in wg and started through
	// spawn, which refuses once Run is stopping: nothing runs after Run
	// returns, so nothing calls into closed ports or sockets.
	wg       sync.WaitGroup
	spawnMu  sync.Mutex
	ctx      context.Context // Run's context; set before any goroutine starts
	stopping bool            // guarded by spawnMu
}

// spawn runs fn on a goroutine owned by the unit, with Run's context. It
// reports false (and runs nothing) once Run is stopping.
func (u *Unit) spawn(fn func(ctx context.Context)) bool {
	u.spawnMu.Lock()
	defer u.spawnMu.Unlock()
	if u.stopping || u.ctx == nil {
		return false
	}
	ctx := u.ctx
	u.wg.Go(func() { fn(ctx) })
	return true
}

// listenRetry opens a socket, retrying for a while if its address is in
// use: a unit restarted at once after a SIGKILL can start before the old
// process's last threads have exited and released its sockets (its main
// thread is already a zombie by then, so a liveness check passes).
func listenRetry[T any](ctx context.Context, listen func() (T, error)) (T, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := listen()
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return c, err
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return c, err
		}
	}
}

// sleepCtx waits d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// command is an operator's request from the API, answered on reply.
type command struct {
	ev    failover.Event
	reply chan string
}

// historySize bounds the transitions kept for `show failover`.
const historySize = 64

// New builds a unit from its config and the data-plane ports (one per
// data interface, by name). It opens no sockets yet: Run does.
func New(cfg *Config, key replicate.Key, ports map[string]firewall.Port, log *slog.Logger) (*Unit, error) {
	u := &Unit{
		cfg:       cfg,
		log:       log,
		events:    NewEventLog(cfg.Name, log),
		key:       key,
		evq:       newEventQueue(),
		cmds:      make(chan command),
		startedAt: time.Now(),
		helloOut:  newSealer(key, "hello"),
		helloIn:   newOpener(key, "hello"),
	}
	for _, t := range firewall.Tables {
		u.tables = append(u.tables, uint8(t))
	}
	fw, err := firewall.New(cfg.Firewall, firewall.Options{
		Logger:     log.With("component", "firewall"),
		OnChange:   u.onChange,
		Replicated: u.replicated,
	})
	if err != nil {
		return nil, fmt.Errorf("firewall config: %w", err)
	}
	u.fw = fw
	if err := u.addGTP(); err != nil {
		return nil, err
	}
	if err := u.newModule(cfg.Firewall.Module); err != nil {
		return nil, fmt.Errorf("service module: %w", err)
	}
	if err := u.newUAuth(cfg.Firewall.UAuth); err != nil {
		return nil, fmt.Errorf("cut-through proxy: %w", err)
	}
	if err := u.addSIP(); err != nil {
		return nil, err
	}
	if err := u.addCTIQBE(); err != nil {
		return nil, err
	}
	for name, p := range ports {
		if err := fw.Attach(name, p); err != nil {
			return nil, err
		}
	}
	// A hello tells the peer's role as it was when sent, and the machine
	// acts on it as the present: one older than the hold time is history.
	// Seen in chaos (cut + restart): hellos the restarted active sent in
	// Negotiation while the failover link was cut waited in the kernel's
	// neighbour queue and arrived 312 ms late, when the link healed; the
	// standby read "peer restarted, no active unit" and took over beside
	// the peer, which had become active meanwhile (two actives for 1.5 ms,
	// until they met and the later term won).
	u.helloWindow.maxAge = cfg.UnitHold
	role := failover.Primary
	if cfg.Role == "secondary" {
		role = failover.Secondary
	}
	m, err := failover.New(failover.Config{
		Role:              role,
		UnitPoll:          cfg.UnitPoll,
		UnitHold:          cfg.UnitHold,
		InterfacePoll:     cfg.InterfacePoll,
		InterfaceHold:     cfg.InterfaceHold,
		ProbeRounds:       probeRounds(cfg.UnitHold, cfg.InterfaceHold),
		NegotiationWindow: cfg.NegotiationWindow,
		Monitored:         cfg.Monitored,
	})
	if err != nil {
		return nil, err
	}
	u.machine = m
	if u.vpn, err = newIPsecEngine(u); err != nil {
		return nil, err
	}
	if u.vpn != nil && !u.noIPsecReplication() {
		if err := u.AddEngineTable(u.vpn); err != nil {
			return nil, err
		}
	}
	u.probes = newProber(u)
	fw.SetControlHandler(probeEtherType, u.probes.handle)
	return u, nil
}

// controlPort is a data interface's socket for failover control frames.
type controlPort struct {
	port firewall.Port
	mac  net.HardwareAddr // the interface's burned-in MAC
}

// AttachControl gives data interface iface its own socket for interface
// hellos (one bound to their EtherType), read by its own goroutine, so that
// a saturated data path neither delays nor drops a confirmation. The data
// plane then ignores those frames. Call before Run.
func (u *Unit) AttachControl(iface string, p interface {
	firewall.Port
	HardwareAddr() net.HardwareAddr
}) {
	if u.control == nil {
		u.control = map[string]*controlPort{}
	}
	u.control[iface] = &controlPort{port: p, mac: p.HardwareAddr()}
	// The data ring sees the same frames: answered once, here.
	u.fw.SetControlHandler(probeEtherType, func(string, [6]byte, []byte) {})
}

// probeRounds sizes a confirmation on the data interfaces to half the unit
// hold, in rounds of interfaceHold (2 to 10). The machine starts a
// confirmation that long before the hold expires, so its length costs
// nothing in a freeze's takeover time; what it buys is patience with a
// loaded machine, where a peer's answer can wait 20 ms or more for a CPU
// (seen in labs on a busy 2-core machine: a 10 ms confirmation made a cut
// failover link look like a dead peer).
func probeRounds(unitHold, interfaceHold time.Duration) int {
	if interfaceHold <= 0 {
		return 0
	}
	return min(max(int(unitHold/2/interfaceHold), 2), 10)
}

// Firewall returns the unit's data plane (for tests and the API).
func (u *Unit) Firewall() *firewall.Firewall { return u.fw }

// Events returns the unit's timeline.
func (u *Unit) Events() *EventLog { return u.events }

// replicated says whether a change goes to the standby: everything but
// HTTP connections while HTTP replication is off (as on an ASA).
func (u *Unit) replicated(c firewall.Change) bool {
	return u.cfg.HTTPReplication || c.Table != firewall.TableConn || !c.Conn.HTTP
}

// onChange runs under the changed entry's lock and the firewall's change
// lock held shared, from several packet readers at once: hand the record
// to the sender's queue (never blocking) when this unit is active.
func (u *Unit) onChange(c firewall.Change) {
	s := u.sender.Load()
	if s == nil {
		return
	}
	var buf [512]byte
	payload := c.AppendBinary(buf[:0])
	if c.Table != firewall.TableConn {
		s.Emit(uint8(c.Table), replicate.Op(c.Op), payload)
		return
	}
	// Keyed, the sender sends one record for the handshake's states
	// that fall in one batch, and none for a connection that opened and
	// closed in it.
	s.EmitEntry(uint8(c.Table), replicate.Op(c.Op), connEntryKey(c.Conn.Orig), c.First, payload)
}

// connEntryKey names a connection for the sender's coalescing: its
// initiator's tuple, the conn table's key.
func connEntryKey(t firewall.Tuple) replicate.EntryKey {
	var k replicate.EntryKey
	k[0] = t.Proto
	copy(k[1:5], t.Src[:])
	copy(k[5:9], t.Dst[:])
	binary.BigEndian.PutUint16(k[9:], t.SrcPort)
	binary.BigEndian.PutUint16(k[11:], t.DstPort)
	return k
}

// Run opens the failover link's sockets, starts the data plane and the
// failover machine, and serves until ctx ends.
func (u *Unit) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u.spawnMu.Lock()
	u.ctx = ctx
	u.spawnMu.Unlock()
	hc, err := listenRetry(ctx, func() (*net.UDPConn, error) {
		return net.ListenUDP("udp4", &net.UDPAddr{IP: u.cfg.LocalAddr.AsSlice(), Port: HelloPort})
	})
	if err != nil {
		return fmt.Errorf("hello socket on the failover link: %w", err)
	}
	u.helloConn = hc
	stateAddr := u.cfg.LocalAddr
	if u.cfg.StateInterface != "" {
		stateAddr = u.cfg.StateLocalAddr
	}
	ln, err := listenRetry(ctx, func() (*net.TCPListener, error) {
		return net.ListenTCP("tcp4", &net.TCPAddr{IP: stateAddr.AsSlice(), Port: StatePort})
	})
	if err != nil {
		hc.Close()
		return fmt.Errorf("state link listener: %w", err)
	}
	u.stateLn = ln
	api, err := u.serveAPI()
	if err != nil {
		hc.Close()
		ln.Close()
		return err
	}
	u.events.Add("start", fmt.Sprintf("unit %s (%s) started, pid %d, mac mode %s, http replication %v", u.cfg.Name, u.cfg.Role, os.Getpid(), u.cfg.MACMode, u.cfg.HTTPReplication))

	fwErr := make(chan error, 1)
	u.spawn(func(ctx context.Context) { fwErr <- u.fw.Run(ctx) })
	if u.vpn != nil {
		if err := u.vpn.start(); err != nil {
			u.log.Error("IKE responder not started", "err", err)
		}
	}
	u.spawn(u.readHellos)
	for name, cp := range u.control {
		u.spawn(func(ctx context.Context) { u.probes.readControl(ctx, name, cp.port) })
	}
	u.spawn(u.acceptState)
	u.spawn(u.watchLinks)
	u.spawn(u.digestLoop)
	if u.gtp != nil {
		u.spawn(u.sweepGTP)
	}
	u.spawn(u.moduleLoop)
	u.spawn(u.uauthLoop)
	if u.sip != nil {
		u.spawn(u.sweepSIP)
	}
	if u.ctiqbe != nil {
		u.spawn(u.sweepCTIQBE)
	}
	u.spawn(u.drive)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-fwErr:
		if runErr != nil {
			runErr = fmt.Errorf("data plane: %w", runErr)
		}
	}
	// Stop forwarding and answering for the pair's addresses before
	// anything else: the peer takes over when it sees this process's
	// sockets close, and until the data plane's readers stop, a unit
	// shutting down must not forward beside the new active.
	u.fw.RenewLease(0)
	u.fw.SetActive(false)
	u.active.Store(false)
	// The control sockets too: a stopping unit must not answer the peer's
	// interface hellos, and their readers wait in ReadBatch until closed.
	for _, cp := range u.control {
		cp.port.Close()
	}
	cancel()
	u.spawnMu.Lock()
	u.stopping = true
	u.spawnMu.Unlock()
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = api.Shutdown(shutCtx)
	shutCancel()
	hc.Close()
	ln.Close()
	if s := u.sender.Swap(nil); s != nil {
		s.Close()
	}
	if r := u.receiver.Swap(nil); r != nil {
		r.Close()
	}
	u.wg.Wait()
	return runErr
}

// drive owns the failover machine: it feeds it events and timer ticks and
// performs its actions in order.
func (u *Unit) drive(ctx context.Context) {
	u.perform(u.machine.Start(time.Now()))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		u.refreshStatus()
		u.renewLease()
		if d := u.machine.NextDeadline(); !d.IsZero() {
			timer.Reset(max(time.Until(d), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-u.evq.wake:
			for _, ev := range u.evq.take() {
				u.perform(u.machine.Step(time.Now(), ev))
			}
		case c := <-u.cmds:
			before := u.machine.State()
			acts := u.machine.Step(time.Now(), c.ev)
			u.perform(acts)
			c.reply <- describeOutcome(before, u.machine.State(), acts)
		case <-timer.C:
			u.perform(u.machine.Tick(time.Now()))
		}
	}
}

// describeOutcome says what a command did, for the operator.
func describeOutcome(before, after failover.State, acts []failover.Action) string {
	for _, a := range acts {
		if n, ok := a.(failover.Notice); ok && before == after {
			return n.Reason
		}
	}
	if before == after {
		return fmt.Sprintf("no change (%s)", after)
	}
	return fmt.Sprintf("%s -> %s", before, after)
}

// feed hands an event to the machine without blocking the caller (the
// replication callbacks must not block) and without ever dropping it.
func (u *Unit) feed(ev failover.Event) { u.evq.push(ev) }

// renewLease extends the data plane's forwarding lease by leaseFor while
// the machine says forward, and revokes it at once when the machine has
// suspended forwarding. drive runs at least every unit poll, so a running
// unit never lets it lapse unless starved of CPU for longer than the
// lease; a frozen one does, and on resuming it does not renew until the
// machine has settled its role (Forwarding).
func (u *Unit) renewLease() {
	switch {
	case u.machine.Forwarding():
		u.fw.RenewLease(time.Now().Add(u.leaseFor()).UnixNano())
	case u.machine.Suspended():
		u.fw.RenewLease(1) // long lapsed
	}
}

// leaseFor is one and a half unit holds: a peer takes over only after a
// hold of silence, so a unit frozen that long must find its lease lapsed
// when it resumes (the chaos freezes are 200 ms and more against a 100 ms
// hold), while a live unit's role loop may be starved of CPU for longer
// than a hold on a busy machine without its data plane dropping (a
// 100 ms lease dropped thousands of frames at load 4.5 on 2 cores).
func (u *Unit) leaseFor() time.Duration { return u.cfg.UnitHold * 3 / 2 }

func (u *Unit) refreshStatus() {
	st := u.machine.Status()
	u.statusMu.Lock()
	u.status = st
	u.statusMu.Unlock()
}

// perform carries out the machine's actions in the order given: for a
// takeover that is Transition(JustActive), BecomeActive (tables already in
// place, forwarding on), AnnounceAddresses (GARP), Transition(Active).
func (u *Unit) perform(acts []failover.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case failover.Transition:
			u.role.Store(uint32(a.To))
			u.statusMu.Lock()
			u.history = append(u.history, a)
			if len(u.history) > historySize {
				u.history = u.history[len(u.history)-historySize:]
			}
			u.statusMu.Unlock()
			u.events.AddAt(a.At, "transition", fmt.Sprintf("%s -> %s: %s", a.From, a.To, a.Reason))
			// The status the API serves changes with the role at once,
			// not at the driver's next loop: a report taken meanwhile
			// would say forwarding after this unit stood down.
			u.refreshStatus()
		case failover.SendHello:
			u.sendHello(a.Hello)
		case failover.BecomeActive:
			u.becomeActive(a)
		case failover.AnnounceAddresses:
			u.announce()
		case failover.BecomeStandby:
			u.becomeStandby(a.Reason)
		case failover.RequestBulkSync:
			u.startReceiver(a.Reason)
		case failover.ProbeDataInterfaces:
			u.probes.start(a)
		case failover.PeerStatus:
			if a.Failed {
				u.events.AddAt(a.At, "peer-failed", "peer "+u.cfg.Peer+" declared failed: "+a.Reason)
			} else {
				u.events.AddAt(a.At, "peer-ok", "peer "+u.cfg.Peer+" heard again: "+a.Reason)
			}
		case failover.FailoverLinkStatus:
			u.statusMu.Lock()
			u.linkStatus = a
			u.statusMu.Unlock()
			if a.Up {
				u.events.AddAt(a.At, "link", "failover link up: "+a.Reason)
			} else {
				u.events.AddAt(a.At, "link", "failover link FAILED: "+a.Reason)
			}
		case failover.Notice:
			u.events.AddAt(a.At, "notice", a.Reason)
		}
	}
}

func (u *Unit) sendHello(h failover.Hello) {
	b, err := h.MarshalBinary()
	if err != nil {
		u.log.Error("hello encode", "err", err)
		return
	}
	sealed := u.helloOut.seal(b)
	peer := &net.UDPAddr{IP: u.cfg.PeerAddr.AsSlice(), Port: HelloPort}
	if _, err := u.helloConn.WriteToUDP(sealed, peer); err != nil && !errors.Is(err, net.ErrClosed) {
		u.log.Debug("hello send", "err", err)
	}
}

// readHellos decodes the peer's hellos from the failover link.
func (u *Unit) readHellos(ctx context.Context) {
	buf := make([]byte, 2048)
	var lastRefusal time.Time
	for {
		n, from, err := u.helloConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		plain, r := u.checkHello(from.Addr(), buf[:n])
		if r == accepted {
			var h failover.Hello
			if err := h.UnmarshalBinary(plain); err != nil {
				u.log.Debug("bad hello", "err", err)
				r = rejectMalformed
			} else {
				// The seal's first field is the send time (checked,
				// and authenticated): the machine tells a thawed unit's
				// backlog from news.
				sentAt := time.Unix(0, int64(binary.BigEndian.Uint64(buf[:8])))
				u.helloDelay.Add(time.Since(sentAt))
				u.feed(failover.HelloReceived{Hello: h, SentAt: sentAt})
				continue
			}
		}
		u.helloRejects.add(r)
		if r == rejectPortCheck {
			continue // the peer asking whether this process is alive
		}
		// Said once a second at most: a thawed unit reads a backlog of
		// stale hellos, a wrong key fails every one.
		if now := time.Now(); now.Sub(lastRefusal) > time.Second {
			lastRefusal = now
			c := u.helloRejects.counts()
			u.events.Add("hello", fmt.Sprintf("hello from %s refused: %v (so far: bad auth %d, stale %d, replay %d, malformed %d)", from, r, c.BadAuth, c.Stale, c.Replay, c.Malformed))
		}
	}
}

// checkHello opens one datagram from the hello port: the peer's sealed
// hello, or its port check.
func (u *Unit) checkHello(from netip.Addr, msg []byte) ([]byte, rejectReason) {
	if from.Unmap() != u.cfg.PeerAddr {
		return nil, rejectMalformed
	}
	if bytes.Equal(msg, portCheckMagic) {
		return nil, rejectPortCheck
	}
	return u.helloIn.open(&u.helloWindow, msg)
}

// becomeActive turns forwarding on from the replicated tables and starts
// serving the state stream to the peer.
func (u *Unit) becomeActive(a failover.BecomeActive) {
	if r := u.receiver.Swap(nil); r != nil {
		r.Close()
	}
	u.fw.RenewLease(time.Now().Add(u.leaseFor()).UnixNano())
	u.fw.SetActive(true)
	u.active.Store(true)
	u.setBoxRole(true)
	if u.vpn != nil {
		n := u.vpn.takeover()
		u.events.Add("ipsec", fmt.Sprintf("%d child SAs installed from the replicated IKE/IPsec table", n))
	}
	if u.sender.Load() == nil {
		var s *replicate.Sender
		s, err := replicate.NewSender(replicate.SenderConfig{
			Key:    u.key,
			Source: fwSource{u},
			Tables: u.tables,
			// Room for a burst of new connections while a large bulk drains.
			QueueLimit: 1 << 18,
			Logger:     u.log.With("component", "replicate"),
			// Events of a sender this unit has since retired (it stepped
			// down) say nothing about the peer.
			OnEvent: func(ev replicate.Event) { u.onSenderEvent(ev, u.sender.Load() == s) },
		})
		if err != nil {
			u.log.Error("replication sender", "err", err)
		} else {
			u.sender.Store(s)
		}
	}
	note := ""
	if !a.StateComplete {
		note = " (state incomplete: bulk sync had not finished)"
	}
	counts := fmt.Sprintf("%d conns, %d xlates, %d arp", u.fw.ConnCount(), u.fw.XlateCount(), len(u.fw.ARPEntries()))
	u.events.Add("active", "forwarding from replicated state: "+counts+note)
}

// announce sends gratuitous ARP on every data interface, repeated on the
// garpSchedule while this unit stays active.
func (u *Unit) announce() {
	start := time.Now()
	u.spawn(func(ctx context.Context) {
		for i, d := range garpSchedule {
			if !sleepCtx(ctx, time.Until(start.Add(d))) {
				return
			}
			// A repeat that comes far too late means this process was
			// frozen meanwhile: the peer has likely taken over, and an
			// announcement now would pull the switches back to a unit
			// about to step down.
			if !u.active.Load() || time.Since(start.Add(d)) > u.cfg.UnitHold {
				return
			}
			u.fw.SendGratuitousARP()
			if i == 0 {
				u.events.Add("garp", fmt.Sprintf("gratuitous ARP sent on %d interfaces (%s MAC)", len(u.cfg.Firewall.Interfaces), u.cfg.MACMode))
			} else if i == len(garpSchedule)-1 {
				u.events.Add("garp", fmt.Sprintf("gratuitous ARP repeated %d times over %v", len(garpSchedule), time.Since(start).Round(time.Millisecond)))
			}
		}
	})
}

func (u *Unit) becomeStandby(reason string) {
	wasActive := u.active.Swap(false)
	u.fw.SetActive(false)
	u.setBoxRole(false)
	if u.vpn != nil {
		u.vpn.stepDown()
	}
	if s := u.sender.Swap(nil); s != nil {
		// Ends the session; never block the driver. If Run is already
		// stopping, Run closes nothing it no longer holds: close here.
		if !u.spawn(func(context.Context) { s.Close() }) {
			s.Close()
		}
	}
	if wasActive {
		u.events.Add("standby", "stopped forwarding: "+reason)
	}
}

// startReceiver makes sure a receiver session toward the active runs:
// dial the peer's state port, bulk sync, apply. It redials while this unit
// is a standby.
func (u *Unit) startReceiver(reason string) {
	if u.receiver.Load() != nil {
		return
	}
	var r *replicate.Receiver
	r, err := replicate.NewReceiver(replicate.ReceiverConfig{
		Key:       u.key,
		Store:     fwStore{u},
		Logger:    u.log.With("component", "replicate"),
		TableName: u.tableName,
		// Events of a receiver this unit has since retired (it became
		// active) say nothing about the peer.
		OnEvent: func(ev replicate.Event) { u.onReceiverEvent(ev, u.receiver.Load() == r) },
	})
	if err != nil {
		u.log.Error("replication receiver", "err", err)
		return
	}
	u.receiver.Store(r)
	u.events.Add("sync", "requesting bulk sync from "+u.cfg.Peer+": "+reason)
	peer := u.cfg.PeerAddr
	if u.cfg.StateInterface != "" {
		peer = u.cfg.StatePeerAddr
	}
	addr := net.JoinHostPort(peer.String(), fmt.Sprint(StatePort))
	u.spawn(func(ctx context.Context) {
		backoff := 20 * time.Millisecond
		for u.receiver.Load() == r {
			d := net.Dialer{Timeout: time.Second}
			c, err := d.DialContext(ctx, "tcp4", addr)
			if err != nil {
				if !sleepCtx(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, 500*time.Millisecond)
				continue
			}
			backoff = 20 * time.Millisecond
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetNoDelay(true)
			}
			err = r.Serve(c)
			if u.receiver.Load() != r {
				return
			}
			_ = err // reported through OnEvent (SyncLost)
			if !sleepCtx(ctx, backoff) {
				return
			}
		}
	})
}

// acceptState serves the standby's connections while this unit is active.
func (u *Unit) acceptState(ctx context.Context) {
	for {
		c, err := u.stateLn.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s := u.sender.Load()
		if s == nil {
			c.Close() // not active: the peer will redial the active
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		if !u.spawn(func(context.Context) { _ = s.Serve(c) }) {
			c.Close()
		}
	}
}

func (u *Unit) onSenderEvent(ev replicate.Event, current bool) {
	switch e := ev.(type) {
	case replicate.SessionUp:
		u.events.Add("sync", "standby "+u.cfg.Peer+" connected for state ("+e.Peer+"): bulk sync starts")
	case replicate.HandshakeRefused:
		// A stranger or a stale connection: the session in place goes on.
		u.events.Add("sync", "state connection from "+e.Peer+" refused (no session began; the standby's session is untouched): "+e.Reason)
	case replicate.BulkProgress:
		if e.Done {
			u.events.Add("sync", fmt.Sprintf("bulk sync sent: %d records", e.Records))
		}
	case replicate.Resync:
		u.events.Add("sync", "resync: "+e.Reason)
	case replicate.SyncLost:
		if !errors.Is(e.Err, replicate.ErrClosed) && current {
			u.events.Add("sync", "state session to standby ended: "+e.Reason)
			u.signIfPeerGone()
		}
	}
}

func (u *Unit) onReceiverEvent(ev replicate.Event, current bool) {
	if current {
		u.statusMu.Lock()
		ready := u.status.State == failover.StandbyReady
		u.statusMu.Unlock()
		if mev, ok := syncEventForMachine(ev, ready); ok {
			u.feed(mev)
		}
	}
	switch e := ev.(type) {
	case replicate.SessionUp:
		u.events.Add("sync", "connected to active "+u.cfg.Peer+" for state: bulk sync starts")
	case replicate.BulkProgress:
		if !e.Done && e.Records == 0 {
			u.events.Add("sync", fmt.Sprintf("bulk sync %d started: tables reset, refilling from the active", e.BulkID))
		}
	case replicate.BulkSyncDone:
		if e.Match {
			u.events.Add("sync", fmt.Sprintf("bulk sync done: %d records, every table digest matches the active's", e.Records))
		} else {
			u.events.Add("sync", fmt.Sprintf("bulk sync done but digests differ on tables %v: resync", e.Mismatched))
		}
	case replicate.DigestChecked:
		if !e.Match {
			u.events.Add("sync", fmt.Sprintf("digest mismatch on tables %v at record %d: resync", e.Mismatched, e.RecordSeq))
		}
	case replicate.Resync:
		u.events.Add("sync", "resync: "+e.Reason)
	case replicate.SyncLost:
		if errors.Is(e.Err, replicate.ErrClosed) || !current {
			return
		}
		u.events.Add("sync", "state session from active ended: "+e.Reason)
		// The tables hold everything applied up to here and stay valid
		// for a takeover; the next session's bulk sync replaces them.
		u.signIfPeerGone()
	}
}

// signIfPeerGone is called when the state session ends. A session also
// ends when the peer changes role (it retires its sender or receiver), so
// the end alone says nothing; but if the peer's kernel refuses a datagram
// to its failover port, its process is gone: that is the sign to act on at
// once, without waiting for the hold time.
func (u *Unit) signIfPeerGone() {
	u.spawn(func(ctx context.Context) {
		// Well under the hold time, which is the fallback when there is
		// no refusal (a frozen peer, a cut link).
		if u.peerPortRefused(ctx, u.cfg.UnitHold/2) {
			u.feed(failover.PeerConnClosed{})
		}
	})
}

// digestLoop has the active mark its table digests in the stream every
// second, so that the standby checks it still holds exactly the active's
// tables, not only after a bulk sync.
func (u *Unit) digestLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s := u.sender.Load(); s != nil {
				fwSource{u}.MarkDigests(s.MarkDigest)
			}
		}
	}
}

// Command runs an operator's failover command and says what happened.
func (u *Unit) Command(ctx context.Context, ev failover.Event) (string, error) {
	c := command{ev: ev, reply: make(chan string, 1)}
	select {
	case u.cmds <- c:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// tableName names a replicated table id for messages.
func (u *Unit) tableName(t uint8) string {
	if e, ok := u.engine(t); ok {
		return e.Name()
	}
	return strings.ToLower(firewall.Table(t).String())
}

// noIPsecReplication says whether the lab keeps the IKE and IPsec SA table
// off the state link (failover.replicate.ipsec false, in the lab file or a
// scenario's override).
func (u *Unit) noIPsecReplication() bool {
	return u.cfg.NoIPsecReplication || slices.Contains(u.cfg.NoReplicate, "ipsec-sa")
}
