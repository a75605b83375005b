package esp

import "fmt"

// Window is the anti-replay window of RFC 4303 §3.4.3, as a bitmap ring
// (the RFC 6479 layout): bit s%64 of word (s/64)%len records whether
// sequence number s was received. The ring has one word more than the
// window needs, so moving the top clears whole words (at most size/64+1
// writes for any jump) while the last size numbers stay covered.
//
// Invariant: in the top's word, no bit above the top is set.
type Window struct {
	top  uint32
	bits []uint64
	size uint32
}

// NewWindow returns an empty window of size bits, a multiple of 64.
func NewWindow(size int) (*Window, error) {
	if size < 64 || size%64 != 0 || size > 1<<16 {
		return nil, fmt.Errorf("esp: replay window of %d bits; use a multiple of 64 up to 65536", size)
	}
	return &Window{bits: make([]uint64, size/64+1), size: uint32(size)}, nil
}

// Top is the highest sequence number accepted so far (0: none).
func (w *Window) Top() uint32 { return w.top }

// Size is the window's size in sequence numbers.
func (w *Window) Size() int { return int(w.size) }

func (w *Window) word(seq uint32) *uint64 { return &w.bits[(seq/64)%uint32(len(w.bits))] }

// Check reports whether seq may be accepted: it is not 0, not already
// received, and not left of the window. It changes nothing; call Accept
// once the ICV verified, so that forged packets cannot move the window.
func (w *Window) Check(seq uint32) bool {
	switch {
	case seq == 0:
		return false
	case seq > w.top:
		return true
	case w.top-seq >= w.size:
		return false
	}
	return *w.word(seq)&(1<<(seq%64)) == 0
}

// Accept records seq as received, moving the top if seq is above it.
func (w *Window) Accept(seq uint32) {
	if seq > w.top {
		n := uint32(len(w.bits))
		from, to := w.top/64, seq/64
		if to-from >= n {
			clear(w.bits)
		} else {
			for i := from + 1; i <= to; i++ {
				w.bits[i%n] = 0
			}
		}
		w.top = seq
	}
	*w.word(seq) |= 1 << (seq % 64)
}

// Snapshot appends to dst the window's state below and at the top, one
// word of 64 sequence numbers each, the top's word first: word i holds
// numbers (Top/64-i)*64 .. +63, bit s%64 set if s was received or is left
// of the window (refused either way). With Top it is what a standby needs
// to Restore the window exactly.
func (w *Window) Snapshot(dst []uint64) []uint64 {
	n := uint32(len(w.bits))
	var left uint32 // numbers below left are left of the window
	if w.top >= w.size {
		left = w.top - w.size + 1
	}
	for i := uint32(0); i < n; i++ {
		if i > w.top/64 {
			dst = append(dst, 0)
			continue
		}
		base := (w.top/64 - i) * 64
		v := w.bits[(w.top/64-i)%n]
		switch {
		case base+63 < left:
			v = ^uint64(0)
		case base < left:
			v |= 1<<(left-base) - 1
		}
		dst = append(dst, v)
	}
	return dst
}

// Restore sets the window to a Snapshot taken on the active: top and the
// received bits below it, so that a packet the active accepted inside the
// window is refused as a replay while one it never saw is still accepted
// (RFC 4303 §3.4.3). It only moves forward: a window already at or past
// top is left alone. Numbers inside this window that words does not
// cover (a smaller window on the active) count as received.
func (w *Window) Restore(top uint32, words []uint64) {
	if top <= w.top {
		return
	}
	n := uint32(len(w.bits))
	w.top = top
	clear(w.bits)
	for i := uint32(0); i < n && i <= top/64; i++ {
		v := ^uint64(0)
		if int(i) < len(words) {
			v = words[i]
		}
		if i == 0 {
			v &= 1<<(top%64+1) - 1 // the invariant: nothing above the top
		}
		w.bits[(top/64-i)%n] = v
	}
}

// Advance applies a top synced from the active: everything up to top is
// treated as received. After a takeover the new active thus accepts only
// numbers above the last synced top and can never accept twice a packet
// the old active already accepted; the price is that packets the old
// active had not yet seen from below that top are dropped.
func (w *Window) Advance(top uint32) {
	if top <= w.top {
		return
	}
	w.top = top
	for i := range w.bits {
		w.bits[i] = ^uint64(0)
	}
	*w.word(top) = 1<<(top%64+1) - 1
}
