package afpacket

import (
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// maxExclude bounds Options.Exclude: one filter instruction each, and a
// jump's offset is a byte.
const maxExclude = 16

// excludeFilter is a classic BPF program that drops frames of the given
// EtherTypes and accepts the rest whole. The kernel has taken any VLAN
// tag off into the skb's metadata, so the EtherType is at offset 12.
func excludeFilter(types []uint16) ([]bpf.RawInstruction, error) {
	prog := []bpf.Instruction{bpf.LoadAbsolute{Off: 12, Size: 2}}
	for i, t := range types {
		// Skip to the drop: past the remaining tests and the accept.
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(t), SkipTrue: uint8(len(types) - i)})
	}
	prog = append(prog, bpf.RetConstant{Val: 0xffffffff}, bpf.RetConstant{Val: 0})
	return bpf.Assemble(prog)
}

// attachExcludeFilter sets excludeFilter(types) on the socket fd.
func attachExcludeFilter(fd int, types []uint16) error {
	raw, err := excludeFilter(types)
	if err != nil {
		return fmt.Errorf("assembling the EtherType filter: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(raw)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("setsockopt SO_ATTACH_FILTER (exclude EtherTypes %#04x): %w", types, err)
	}
	return nil
}
