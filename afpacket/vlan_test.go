package afpacket

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestInsertVLAN(t *testing.T) {
	// dst 02:..:01, src 02:..:02, EtherType 0x88b5, payload "hi".
	frame := []byte{
		0x02, 0, 0, 0, 0, 0x01,
		0x02, 0, 0, 0, 0, 0x02,
		0x88, 0xb5,
		'h', 'i',
	}
	tests := []struct {
		name   string
		room   int // spare bytes after the frame in the buffer
		n      int // frame length given
		tag    vlanTag
		want   []byte
		wantOK bool
	}{
		{
			name: "802.1Q tag after the MACs",
			room: 4, n: len(frame),
			tag: vlanTag{tpid: 0x8100, tci: 0xa064, present: true},
			want: []byte{
				0x02, 0, 0, 0, 0, 0x01,
				0x02, 0, 0, 0, 0, 0x02,
				0x81, 0x00, 0xa0, 0x64, // TPID, PCP 5 VID 100
				0x88, 0xb5,
				'h', 'i',
			},
			wantOK: true,
		},
		{
			name: "802.1ad outer tag",
			room: 10, n: len(frame),
			tag: vlanTag{tpid: 0x88a8, tci: 0x0fff, present: true},
			want: []byte{
				0x02, 0, 0, 0, 0, 0x01,
				0x02, 0, 0, 0, 0, 0x02,
				0x88, 0xa8, 0x0f, 0xff,
				0x88, 0xb5,
				'h', 'i',
			},
			wantOK: true,
		},
		{
			name: "MACs only",
			room: 4, n: 12,
			tag: vlanTag{tpid: 0x8100, tci: 1, present: true},
			want: []byte{
				0x02, 0, 0, 0, 0, 0x01,
				0x02, 0, 0, 0, 0, 0x02,
				0x81, 0x00, 0x00, 0x01,
			},
			wantOK: true,
		},
		{name: "no room for the tag", room: 3, n: len(frame), tag: vlanTag{tpid: 0x8100, present: true}, want: frame},
		{name: "shorter than two MACs", room: 4, n: 11, tag: vlanTag{tpid: 0x8100, present: true}, want: frame[:11]},
		{name: "length beyond buffer", room: 0, n: len(frame) + 1, tag: vlanTag{tpid: 0x8100, present: true}, want: frame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, len(frame)+tt.room)
			copy(buf, frame)
			n, ok := insertVLAN(buf, tt.n, tt.tag)
			if ok != tt.wantOK {
				t.Fatalf("insertVLAN ok = %v; want %v", ok, tt.wantOK)
			}
			got := buf[:min(n, len(buf))]
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("frame (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTagFromStatus(t *testing.T) {
	tests := []struct {
		name      string
		status    uint32
		tci, tpid uint16
		want      vlanTag
	}{
		{"untagged", 0, 0, 0, vlanTag{}},
		{"tag with TPID", unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID, 100, 0x88a8, vlanTag{0x88a8, 100, true}},
		{"TPID not reported means 802.1Q", unix.TP_STATUS_VLAN_VALID, 100, 0x88a8, vlanTag{0x8100, 100, true}},
		{"priority tag, VID 0", unix.TP_STATUS_VLAN_VALID, 0, 0, vlanTag{0x8100, 0, true}},
		{"old kernel: TCI without the valid flag", 0, 7, 0, vlanTag{0x8100, 7, true}},
		{"TPID valid but zero", unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID, 5, 0, vlanTag{0x8100, 5, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tagFromStatus(tt.status, tt.tci, tt.tpid)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(vlanTag{})); diff != "" {
				t.Errorf("tagFromStatus(%#x, %d, %#x) (-want +got):\n%s", tt.status, tt.tci, tt.tpid, diff)
			}
		})
	}
}

// cmsg builds one control message as the kernel lays it out, padded to
// CmsgSpace.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := uint64(unix.CmsgLen(len(data)))
	if unix.SizeofCmsghdr == 16 {
		binary.NativeEndian.PutUint64(b, h)
	} else {
		binary.NativeEndian.PutUint32(b, uint32(h))
	}
	binary.NativeEndian.PutUint32(b[unix.SizeofCmsghdr-8:], uint32(level))
	binary.NativeEndian.PutUint32(b[unix.SizeofCmsghdr-4:], uint32(typ))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// auxdata builds a struct tpacket_auxdata.
func auxdata(status uint32, tci, tpid uint16) []byte {
	b := make([]byte, sizeofTpacketAuxdata)
	binary.NativeEndian.PutUint32(b[0:], status)
	binary.NativeEndian.PutUint32(b[4:], 60)  // len
	binary.NativeEndian.PutUint32(b[8:], 60)  // snaplen
	binary.NativeEndian.PutUint16(b[12:], 0)  // mac
	binary.NativeEndian.PutUint16(b[14:], 14) // net
	binary.NativeEndian.PutUint16(b[16:], tci)
	binary.NativeEndian.PutUint16(b[18:], tpid)
	return b
}

func TestParseAuxdata(t *testing.T) {
	tagged := cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxdata(unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID, 0x2064, 0x8100))
	const vlanStatus = unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID
	const csumStatus = unix.TP_STATUS_CSUMNOTREADY
	type result struct {
		Status uint32
		Tag    vlanTag
	}
	tests := []struct {
		name string
		ctl  []byte
		want result
	}{
		{"empty", nil, result{}},
		{"auxdata with tag", tagged, result{vlanStatus, vlanTag{0x8100, 0x2064, true}}},
		{"auxdata without tag", cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxdata(0, 0, 0)), result{}},
		{"checksum not ready", cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxdata(csumStatus, 0, 0)), result{csumStatus, vlanTag{}}},
		{"after another message", append(cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMP, make([]byte, 16)), tagged...), result{vlanStatus, vlanTag{0x8100, 0x2064, true}}},
		{"other message only", cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMP, make([]byte, 16)), result{}},
		{"auxdata cut short", tagged[:len(tagged)-8], result{}},
		{"header only", tagged[:unix.SizeofCmsghdr], result{}},
		{"data too short for auxdata", cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, make([]byte, 8)), result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got result
			got.Status, got.Tag = parseAuxdata(tt.ctl)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(vlanTag{})); diff != "" {
				t.Errorf("parseAuxdata (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseAuxdataAllocatesNothing(t *testing.T) {
	ctl := cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxdata(unix.TP_STATUS_VLAN_VALID, 5, 0))
	if n := testing.AllocsPerRun(100, func() { parseAuxdata(ctl) }); n != 0 {
		t.Errorf("parseAuxdata allocates %v times; want 0", n)
	}
}

// FuzzParseAuxdata feeds arbitrary control-message bytes to the parser:
// it must not panic, and any tag it reports must carry a TPID.
func FuzzParseAuxdata(f *testing.F) {
	f.Add(cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxdata(unix.TP_STATUS_VLAN_VALID, 100, 0)))
	f.Add(append(cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMP, make([]byte, 16)), cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxdata(0, 0, 0))...))
	f.Fuzz(func(t *testing.T, ctl []byte) {
		_, tag := parseAuxdata(ctl)
		if tag.present && tag.tpid == 0 {
			t.Errorf("parseAuxdata(%x) = %+v: tag without TPID", ctl, tag)
		}
	})
}

// FuzzInsertVLAN checks that a restored tag sits after the MACs and the
// rest of the frame follows unchanged, for any frame and buffer room.
func FuzzInsertVLAN(f *testing.F) {
	f.Add([]byte("0123456789abcdefgh"), uint8(4), uint16(0x8100), uint16(100))
	f.Add([]byte("short"), uint8(10), uint16(0x88a8), uint16(0))
	f.Fuzz(func(t *testing.T, frame []byte, room uint8, tpid, tci uint16) {
		buf := make([]byte, len(frame)+int(room))
		copy(buf, frame)
		n, ok := insertVLAN(buf, len(frame), vlanTag{tpid: tpid, tci: tci, present: true})
		if !ok {
			if n != len(frame) || !bytes.Equal(buf[:len(frame)], frame) {
				t.Fatalf("refused insert changed the frame or its length")
			}
			return
		}
		if n != len(frame)+vlanTagLen {
			t.Fatalf("length %d; want %d", n, len(frame)+vlanTagLen)
		}
		want := append(append(append([]byte{}, frame[:12]...), byte(tpid>>8), byte(tpid), byte(tci>>8), byte(tci)), frame[12:]...)
		if !bytes.Equal(buf[:n], want) {
			t.Fatalf("got %x; want %x", buf[:n], want)
		}
	})
}
