package afpacket

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

const (
	// ethAddrsLen is the length of the destination and source MACs, after
	// which an 802.1Q tag sits.
	ethAddrsLen = 12
	// vlanTagLen is the length of one 802.1Q tag: TPID and TCI.
	vlanTagLen = 4
	// tpid8021Q is the TPID the kernel means when it reports a tag
	// without one (older kernels, or TP_STATUS_VLAN_TPID_VALID clear).
	tpid8021Q = 0x8100
)

// vlanTag is the tag the kernel removed from a received frame, as the ring
// header or PACKET_AUXDATA report it.
type vlanTag struct {
	tpid, tci uint16
	present   bool
}

// tagFromStatus builds the tag from a TPACKET status word and its TCI and
// TPID fields. TP_STATUS_VLAN_VALID says a tag was there even when its TCI
// is zero (priority-tagged frames).
func tagFromStatus(status uint32, tci, tpid uint16) vlanTag {
	if status&unix.TP_STATUS_VLAN_VALID == 0 && tci == 0 {
		return vlanTag{}
	}
	if status&unix.TP_STATUS_VLAN_TPID_VALID == 0 || tpid == 0 {
		tpid = tpid8021Q
	}
	return vlanTag{tpid: tpid, tci: tci, present: true}
}

// insertVLAN puts tag back into the frame buf[:n] after its MAC addresses
// and returns the new length. It returns false, leaving buf as it was, when
// the frame is too short to hold MAC addresses or buf has no room for 4
// more bytes.
func insertVLAN(buf []byte, n int, tag vlanTag) (int, bool) {
	if n < ethAddrsLen || n > len(buf) || len(buf)-n < vlanTagLen {
		return n, false
	}
	copy(buf[ethAddrsLen+vlanTagLen:n+vlanTagLen], buf[ethAddrsLen:n])
	binary.BigEndian.PutUint16(buf[ethAddrsLen:], tag.tpid)
	binary.BigEndian.PutUint16(buf[ethAddrsLen+2:], tag.tci)
	return n + vlanTagLen, true
}

// sizeofTpacketAuxdata is the size of struct tpacket_auxdata: status, len,
// snaplen (u32 each), mac, net, vlan_tci, vlan_tpid (u16 each).
const sizeofTpacketAuxdata = 20

// auxSpace is the control buffer one received message needs for its
// PACKET_AUXDATA.
var auxSpace = unix.CmsgSpace(sizeofTpacketAuxdata)

// parseAuxdata finds PACKET_AUXDATA among the control messages in ctl and
// returns the TP_STATUS_* word and the VLAN tag it reports (zero values
// when there is none). It allocates nothing. Control messages it
// does not know, or that are cut short, are skipped: the frame is still
// delivered, only without its tag restored.
func parseAuxdata(ctl []byte) (status uint32, tag vlanTag) {
	for len(ctl) >= unix.SizeofCmsghdr {
		// struct cmsghdr: size_t len, int level, int type. Read field
		// by field: the bytes need not be aligned for a struct view.
		var l uint64
		if unix.SizeofCmsghdr == 16 {
			l = binary.NativeEndian.Uint64(ctl)
		} else {
			l = uint64(binary.NativeEndian.Uint32(ctl))
		}
		level := int32(binary.NativeEndian.Uint32(ctl[unix.SizeofCmsghdr-8:]))
		typ := int32(binary.NativeEndian.Uint32(ctl[unix.SizeofCmsghdr-4:]))
		if l < uint64(unix.SizeofCmsghdr) || l > uint64(len(ctl)) {
			return 0, vlanTag{}
		}
		data := ctl[unix.CmsgLen(0):l]
		if level == unix.SOL_PACKET && typ == unix.PACKET_AUXDATA && len(data) >= sizeofTpacketAuxdata {
			// Field offsets of struct tpacket_auxdata; read with
			// binary.NativeEndian because data need not be aligned
			// for a Go struct view.
			status := binary.NativeEndian.Uint32(data[0:])
			tci := binary.NativeEndian.Uint16(data[16:])
			tpid := binary.NativeEndian.Uint16(data[18:])
			return status, tagFromStatus(status, tci, tpid)
		}
		next := unix.CmsgSpace(int(l) - unix.CmsgLen(0))
		if next > len(ctl) {
			return 0, vlanTag{}
		}
		ctl = ctl[next:]
	}
	return 0, vlanTag{}
}
