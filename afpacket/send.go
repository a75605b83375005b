package afpacket

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sender sends with sendmmsg(2), one system call per batch.
type sender struct {
	msgs []unix.Mmsghdr
	iovs []unix.Iovec

	sendFn func(fd uintptr) bool
	want   int           // messages the callback offers
	sent   int           // messages the kernel took
	errno  syscall.Errno // why it refused msgs[sent], other than EAGAIN
}

func newSender(batch int) *sender {
	s := &sender{
		msgs: make([]unix.Mmsghdr, batch),
		iovs: make([]unix.Iovec, batch),
	}
	s.sendFn = s.send
	return s
}

func (s *sender) send(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(s.want), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // send buffer full: wait until writable
		case 0:
			s.sent, s.errno = int(n), 0
		default:
			// sendmmsg reports an error only for the first message;
			// after a partial batch it returns the count and the
			// next call meets the error again.
			s.sent, s.errno = 0, e
		}
		return true
	}
}

func (s *sender) write(p *Port, frames [][]byte) (int, error) {
	accepted := 0
	var first error
	for len(frames) > 0 {
		n := min(len(frames), len(s.msgs))
		for i, f := range frames[:n] {
			iov := &s.iovs[i]
			iov.Base = nil
			if len(f) > 0 {
				iov.Base = &f[0]
			}
			iov.SetLen(len(f))
			h := &s.msgs[i].Hdr
			h.Iov = iov
			h.SetIovlen(1)
		}
		s.want, s.sent, s.errno = n, 0, 0
		if err := p.raw.Write(s.sendFn); err != nil {
			return accepted, err
		}
		var bytes uint64
		for _, f := range frames[:s.sent] {
			bytes += uint64(len(f))
		}
		p.txFrames.Add(uint64(s.sent))
		p.txBytes.Add(bytes)
		accepted += s.sent
		frames = frames[s.sent:]
		if s.errno != 0 {
			p.txErrors.Add(1)
			if first == nil {
				first = fmt.Errorf("afpacket: %q: sending a %d-byte frame: %w", p.name, len(frames[0]), os.NewSyscallError("sendmmsg", s.errno))
			}
			frames = frames[1:]
		}
	}
	return accepted, first
}
