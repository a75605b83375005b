package afpacket

import "encoding/binary"

// VNetHdrLen is the length of the virtio_net_hdr that starts every frame
// when Options.VNetHdr is set.
const VNetHdrLen = 10

// VNetHdr is a view of a struct virtio_net_hdr, the first VNetHdrLen bytes
// of a frame read or written with Options.VNetHdr. Its 16-bit fields are in
// the host's byte order (the kernel's legacy virtio convention for
// AF_PACKET). A VNetHdr must be at least VNetHdrLen bytes long.
//
//	 0        1          2         4          6            8             10
//	+--------+----------+---------+----------+------------+-------------+
//	| flags  | gso_type | hdr_len | gso_size | csum_start | csum_offset |
//	+--------+----------+---------+----------+------------+-------------+
type VNetHdr []byte

// Flags returns the VIRTIO_NET_HDR_F_* bits: NEEDS_CSUM means the
// transport checksum at CsumStart+CsumOffset is still to be completed.
func (h VNetHdr) Flags() uint8 { return h[0] }

// GSOType returns the VIRTIO_NET_HDR_GSO_* kind of super-frame, or
// VIRTIO_NET_HDR_GSO_NONE for an ordinary frame.
func (h VNetHdr) GSOType() uint8 { return h[1] }

// HdrLen returns the length of the headers before the payload (a hint).
func (h VNetHdr) HdrLen() uint16 { return binary.NativeEndian.Uint16(h[2:]) }

// GSOSize returns the payload size of each segment of a super-frame.
func (h VNetHdr) GSOSize() uint16 { return binary.NativeEndian.Uint16(h[4:]) }

// CsumStart returns the offset, from the Ethernet header, where checksumming
// starts.
func (h VNetHdr) CsumStart() uint16 { return binary.NativeEndian.Uint16(h[6:]) }

// CsumOffset returns where, after CsumStart, the checksum is stored.
func (h VNetHdr) CsumOffset() uint16 { return binary.NativeEndian.Uint16(h[8:]) }

// Set writes every field.
func (h VNetHdr) Set(flags, gsoType uint8, hdrLen, gsoSize, csumStart, csumOffset uint16) {
	h[0], h[1] = flags, gsoType
	binary.NativeEndian.PutUint16(h[2:], hdrLen)
	binary.NativeEndian.PutUint16(h[4:], gsoSize)
	binary.NativeEndian.PutUint16(h[6:], csumStart)
	binary.NativeEndian.PutUint16(h[8:], csumOffset)
}
