package afpacket

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// socket is what a Port and a Tap share: an AF_PACKET socket bound to one
// interface, its receive ring mapped into the process, waits through the
// Go runtime poller, and the kernel's PACKET_STATISTICS summed.
//
// Concurrency: the one reader holds rxMu while it touches the ring; close
// takes rxMu before unmapping, so no read ever meets unmapped memory, and
// a reader that takes rxMu after close finds closed set.
type socket struct {
	name   string
	index  int
	hwaddr net.HardwareAddr

	file *os.File // the fd, in the runtime poller
	raw  syscall.RawConn

	closed    atomic.Bool
	closeOnce sync.Once

	rxMu sync.Mutex
	ring []byte // guarded by rxMu: the mapped receive ring, nil once unmapped

	statsMu      sync.Mutex
	kernelFrames uint64 // guarded by statsMu: PACKET_STATISTICS resets on read, so it is summed here
	kernelDrops  uint64 // guarded by statsMu
}

// socketSpec says how openSocket sets a socket up.
type socketSpec struct {
	// version is unix.TPACKET_V2 (a slot per frame) or unix.TPACKET_V3
	// (frames packed into blocks).
	version int
	// ring is the receive ring's geometry; for V2 only its first four
	// fields count.
	ring unix.TpacketReq3
	// protocol is the one EtherType to receive; 0 receives all.
	protocol uint16
	// promisc puts the interface in promiscuous mode while the socket is
	// open.
	promisc bool
	// options sets socket options that must come before the ring.
	options func(fd int) error
}

// openSocket opens and binds a socket on the interface named ifname in the
// network namespace of the calling thread; the socket stays in that
// namespace.
func openSocket(ifname string, spec socketSpec) (*socket, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("afpacket: interface %q: %w", ifname, err)
	}
	// Protocol 0 until bind: the socket receives nothing, from this or
	// any other interface, while it is being set up.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("afpacket: socket for %q: %w", ifname, err)
	}
	s := &socket{name: ifname, index: ifi.Index, hwaddr: ifi.HardwareAddr}
	if err := s.setup(fd, spec); err != nil {
		s.unmap()
		unix.Close(fd)
		return nil, fmt.Errorf("afpacket: %q: %w", ifname, err)
	}
	// The fd is non-blocking, so os.NewFile registers it with the runtime
	// poller: a wait parks the goroutine, not a thread, File.Close wakes
	// it, and a read deadline bounds it.
	s.file = os.NewFile(uintptr(fd), "afpacket:"+ifname)
	if s.raw, err = s.file.SyscallConn(); err != nil {
		s.unmap()
		s.file.Close()
		return nil, fmt.Errorf("afpacket: %q: %w", ifname, err)
	}
	return s, nil
}

func (s *socket) setup(fd int, spec socketSpec) error {
	if spec.options != nil {
		if err := spec.options(fd); err != nil {
			return err
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, spec.version); err != nil {
		return fmt.Errorf("setsockopt PACKET_VERSION=%d: %w", spec.version, err)
	}
	req := spec.ring
	var err error
	if spec.version == unix.TPACKET_V3 {
		err = unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req)
	} else {
		v2 := unix.TpacketReq{Block_size: req.Block_size, Block_nr: req.Block_nr, Frame_size: req.Frame_size, Frame_nr: req.Frame_nr}
		err = unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &v2)
	}
	if err != nil {
		return fmt.Errorf("setsockopt PACKET_RX_RING %+v: %w", req, err)
	}
	size := int(req.Block_size) * int(req.Block_nr)
	if s.ring, err = unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fmt.Errorf("mmap RX ring of %d bytes: %w", size, err)
	}
	if spec.promisc {
		// Promiscuous membership belongs to the socket: the kernel
		// drops it when the socket closes, even if the process dies.
		mreq := unix.PacketMreq{Ifindex: int32(s.index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fmt.Errorf("setsockopt PACKET_ADD_MEMBERSHIP promisc: %w", err)
		}
	}
	proto := uint16(unix.ETH_P_ALL)
	if spec.protocol != 0 {
		proto = spec.protocol
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: s.index}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// wait parks the caller, which holds rxMu, until ready (called by the
// poller first, then after each wake-up) reports true, the read deadline
// passes, or the socket is closed. The kernel makes the socket readable
// for each frame or block it puts in the ring.
func (s *socket) wait(ready func(fd uintptr) bool) error {
	return s.fixErr(s.raw.Read(ready))
}

// fixErr turns the poller's "use of closed file" into ErrClosed.
func (s *socket) fixErr(err error) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return err
}

// SetReadDeadline makes a pending and future wait for frames return an
// error wrapping os.ErrDeadlineExceeded once t has passed; the zero time
// clears it.
func (s *socket) SetReadDeadline(t time.Time) error {
	return s.file.SetReadDeadline(t)
}

// Name returns the interface name the socket was opened on.
func (s *socket) Name() string { return s.name }

// HardwareAddr returns the interface's MAC address as it was at open.
func (s *socket) HardwareAddr() net.HardwareAddr { return s.hwaddr }

// kernelStats returns the running totals of PACKET_STATISTICS: frames
// the kernel handed to the socket, and those it dropped with the ring full.
func (s *socket) kernelStats() (frames, drops uint64, err error) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if !s.closed.Load() {
		err = s.pollKernelStats()
	}
	return s.kernelFrames, s.kernelDrops, err
}

// pollKernelStats adds PACKET_STATISTICS, which the kernel zeroes on each
// read, to the running totals. Called with statsMu held.
func (s *socket) pollKernelStats() error {
	var ks *unix.TpacketStats
	var serr error
	err := s.raw.Control(func(fd uintptr) {
		ks, serr = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("afpacket: %q: PACKET_STATISTICS: %w", s.name, s.fixErr(err))
	}
	s.kernelFrames += uint64(ks.Packets)
	s.kernelDrops += uint64(ks.Drops)
	return nil
}

// close closes the socket, which ends promiscuous mode, wakes a waiting
// reader, and unmaps the ring once the reader has let go of it. Closing
// twice returns nil.
func (s *socket) close() error {
	var err error
	s.closeOnce.Do(func() {
		// Last counters first: they live in the socket.
		s.statsMu.Lock()
		s.pollKernelStats()
		s.closed.Store(true)
		s.statsMu.Unlock()
		err = s.file.Close()
		s.rxMu.Lock()
		if uerr := s.unmap(); err == nil {
			err = uerr
		}
		s.rxMu.Unlock()
	})
	return err
}

// unmap releases the ring; called during open, or by close with rxMu held.
func (s *socket) unmap() error {
	if s.ring == nil {
		return nil
	}
	err := unix.Munmap(s.ring)
	s.ring = nil
	if err != nil {
		return fmt.Errorf("afpacket: munmap RX ring: %w", err)
	}
	return nil
}
