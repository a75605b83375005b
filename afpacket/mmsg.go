package afpacket

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgReceiver receives with recvmmsg(2): one system call per batch, each
// frame with its PACKET_AUXDATA control message.
//
// The poller callback is a method value made once, and the call's inputs
// and results pass through the struct, so a read allocates nothing.
type mmsgReceiver struct {
	msgs []unix.Mmsghdr
	iovs []unix.Iovec
	ctl  []byte // auxSpace bytes per message

	recvFn func(fd uintptr) bool
	want   int           // messages the callback asks for
	got    int           // messages it received
	errno  syscall.Errno // its error, other than EAGAIN
}

func newMmsgReceiver(batch int) *mmsgReceiver {
	r := &mmsgReceiver{
		msgs: make([]unix.Mmsghdr, batch),
		iovs: make([]unix.Iovec, batch),
		ctl:  make([]byte, batch*auxSpace),
	}
	r.recvFn = r.recv
	return r
}

func (r *mmsgReceiver) recv(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(r.want), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // nothing queued: wait for the poller
		}
		r.got, r.errno = int(n), e
		return true
	}
}

func (r *mmsgReceiver) read(p *Port, bufs [][]byte, sizes []int) (int, error) {
	for {
		for i, b := range bufs {
			iov := &r.iovs[i]
			iov.Base = nil
			if len(b) > 0 {
				iov.Base = &b[0]
			}
			iov.SetLen(len(b))
			h := &r.msgs[i].Hdr
			h.Iov = iov
			h.SetIovlen(1)
			h.Control = &r.ctl[i*auxSpace]
			h.SetControllen(auxSpace)
			h.Flags = 0
			r.msgs[i].Len = 0
		}
		r.want, r.got, r.errno = len(bufs), 0, 0
		if err := p.raw.Read(r.recvFn); err != nil {
			return 0, err
		}
		if r.errno == unix.ENETDOWN {
			// The kernel reports its interface going down once, as a
			// pending socket error; frames flow again when it comes
			// up. A link fault is not the end of the port.
			continue
		}
		if r.errno != 0 {
			return 0, fmt.Errorf("afpacket: %q: %w", p.name, os.NewSyscallError("recvmmsg", r.errno))
		}
		if n := r.finish(p, bufs, sizes); n > 0 {
			return n, nil
		}
		// Every frame was dropped: wait for more.
	}
}

// finish restores VLAN tags, drops truncated frames and moves the kept ones
// to the front of bufs. It returns how many it kept.
func (r *mmsgReceiver) finish(p *Port, bufs [][]byte, sizes []int) int {
	kept := 0
	for i := range r.got {
		m := &r.msgs[i]
		size := int(m.Len)
		buf := bufs[i]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			p.truncated.Add(1)
			continue
		}
		ctlLen := min(int(m.Hdr.Controllen), auxSpace)
		status, tag := parseAuxdata(r.ctl[i*auxSpace : i*auxSpace+ctlLen])
		if status&unix.TP_STATUS_CSUMNOTREADY != 0 {
			p.checksumPending.Add(1)
		}
		if tag.present {
			var ok bool
			if size, ok = restoreTag(buf, size, tag, p.opts.VNetHdr); !ok {
				p.truncated.Add(1)
				continue
			}
			p.vlanRestored.Add(1)
		}
		if kept != i {
			// Only after a drop, so rare: copy down to keep the
			// returned frames contiguous.
			if len(bufs[kept]) < size {
				p.truncated.Add(1)
				continue
			}
			copy(bufs[kept], buf[:size])
		}
		sizes[kept] = size
		kept++
	}
	return kept
}

func (r *mmsgReceiver) close() error { return nil }

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
