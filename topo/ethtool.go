package topo

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Offloads are the segmentation, receive-coalescing and checksum offloads a
// userspace data plane cares about: with them on, AF_PACKET sees 64 KiB
// "frames" and packets with checksums left for hardware that isn't there.
type Offloads struct {
	SG     bool // scatter-gather, which TSO needs
	TSO    bool // TCP segmentation offload
	GSO    bool // generic segmentation offload
	GRO    bool // generic receive offload
	TXCsum bool // transmit checksum offload
}

// offloadOps pairs each offload with its legacy ethtool get and set
// commands. The legacy commands act on one feature by name-free number,
// which spares us the ETHTOOL_GSTRINGS dance of ETHTOOL_SFEATURES.
var offloadOps = []struct {
	name     string
	get, set uint32
	field    func(*Offloads) *bool
}{
	// In dependency order: SG needs a TX checksum offload and TSO needs
	// SG, so turning them on goes this way, and turning TX checksum off
	// drops the other two with it.
	{"tx-checksum", unix.ETHTOOL_GTXCSUM, unix.ETHTOOL_STXCSUM, func(o *Offloads) *bool { return &o.TXCsum }},
	{"sg", unix.ETHTOOL_GSG, unix.ETHTOOL_SSG, func(o *Offloads) *bool { return &o.SG }},
	{"tso", unix.ETHTOOL_GTSO, unix.ETHTOOL_STSO, func(o *Offloads) *bool { return &o.TSO }},
	{"gso", unix.ETHTOOL_GGSO, unix.ETHTOOL_SGSO, func(o *Offloads) *bool { return &o.GSO }},
	{"gro", unix.ETHTOOL_GGRO, unix.ETHTOOL_SGRO, func(o *Offloads) *bool { return &o.GRO }},
}

// ethtoolValue is struct ethtool_value from linux/ethtool.h.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with the ifr_data member: a name and a pointer,
// padded to the kernel's 40 bytes.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// ethtoolValueIoctl runs one legacy ethtool command on ifname, using fd (any
// socket in the interface's namespace).
func ethtoolValueIoctl(fd int, ifname string, cmd, data uint32) (uint32, error) {
	v := ethtoolValue{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:len(ifr.name)-1], ifname)
	ifr.data = unsafe.Pointer(&v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&v)
	if errno != 0 {
		return 0, errno
	}
	return v.data, nil
}

// withEthtoolSocket opens the datagram socket the ethtool ioctl needs in the
// calling thread's namespace. Call it inside Do.
func withEthtoolSocket(fn func(fd int) error) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for ethtool: %w", err)
	}
	defer unix.Close(fd)
	return fn(fd)
}

// setOffloads turns every offload in offloadOps on or off on ifname in the
// calling thread's namespace.
func setOffloads(ifname string, on bool) error {
	val, state := uint32(0), "off"
	if on {
		val, state = 1, "on"
	}
	return withEthtoolSocket(func(fd int) error {
		for _, op := range offloadOps {
			if _, err := ethtoolValueIoctl(fd, ifname, op.set, val); err != nil {
				return fmt.Errorf("turn %s %s: %w", state, op.name, err)
			}
		}
		return nil
	})
}

// SetOffloads turns every offload of Offloads on or off on ifname in
// namespace ns: the one way falab sets offloads (Endpoint.OffloadsOff uses
// it too).
func SetOffloads(ns, ifname string, on bool) error {
	if err := Do(ns, func() error { return setOffloads(ifname, on) }); err != nil {
		return fmt.Errorf("%s:%s: %w", ns, ifname, err)
	}
	return nil
}

// readOffloads reads the offload settings of ifname in the calling thread's
// namespace.
func readOffloads(ifname string) (Offloads, error) {
	var o Offloads
	err := withEthtoolSocket(func(fd int) error {
		for _, op := range offloadOps {
			v, err := ethtoolValueIoctl(fd, ifname, op.get, 0)
			if err != nil {
				return fmt.Errorf("read %s: %w", op.name, err)
			}
			*op.field(&o) = v != 0
		}
		return nil
	})
	return o, err
}

// GetOffloads reads the offload settings of ifname in namespace ns.
func GetOffloads(ns, ifname string) (Offloads, error) {
	var o Offloads
	err := Do(ns, func() (err error) {
		o, err = readOffloads(ifname)
		return err
	})
	if err != nil {
		return Offloads{}, fmt.Errorf("%s:%s: %w", ns, ifname, err)
	}
	return o, nil
}
