package capture

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// garpFrame is the gratuitous ARP a new active sends for 198.18.1.1, as
// falab's firewall builds it (42 bytes, not padded: a veth carries it so).
var garpFrame = []byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
	0x02, 0xfa, 0x1a, 0xb0, 0x00, 0x01, // source
	0x08, 0x06, // EtherType ARP
	0x00, 0x01, // hardware type Ethernet
	0x08, 0x00, // protocol type IPv4
	0x06, 0x04, // hardware and protocol address lengths
	0x00, 0x01, // opcode request
	0x02, 0xfa, 0x1a, 0xb0, 0x00, 0x01, // sender MAC
	198, 18, 1, 1, // sender IP
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC: unknown
	198, 18, 1, 1, // target IP: the sender's own, which makes it gratuitous
}

// goldenTime is the golden packet's timestamp, with nanoseconds that a
// microsecond file could not hold.
var goldenTime = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

var goldenIface = Interface{Name: "eth0", Comment: "namespace falab-captest-client1", SnapLen: DefaultSnapLen}

// onePacket writes the golden one-packet file.
func onePacket(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, goldenIface)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(goldenTime, garpFrame, len(garpFrame), DirInbound); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestGolden compares the one-packet file byte for byte with
// testdata/one-packet.pcapng (go test -update rewrites it; check a new one
// with tshark before committing it).
func TestGolden(t *testing.T) {
	got := onePacket(t)
	path := filepath.Join("testdata", "one-packet.pcapng")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("one-packet file differs from %s (-want +got):\n%s", path, diff)
	}
}

// TestGoldenLayout pins the golden file's block layout by hand, so that the
// golden file is not only "what the writer wrote once".
func TestGoldenLayout(t *testing.T) {
	b := onePacket(t)
	type block struct {
		Type uint32
		Len  uint32
	}
	var got []block
	for off := 0; off+8 <= len(b); {
		bl := block{le.Uint32(b[off:]), le.Uint32(b[off+4:])}
		got = append(got, bl)
		if bl.Len == 0 {
			break
		}
		off += int(bl.Len)
	}
	want := []block{
		// SHB: 12 framing + 16 fixed + shb_userappl "falab" (4+8) + end (4).
		{blockSHB, 12 + 16 + 12 + 4},
		// IDB: 12 + 8 fixed + if_name "eth0" (4+4) + opt_comment (4+32)
		// + if_tsresol (4+4) + end (4).
		{blockIDB, 12 + 8 + 8 + 36 + 8 + 4},
		// EPB: 12 + 20 fixed + 42 data padded to 44 + epb_flags (4+4) + end (4).
		{blockEPB, 12 + 20 + 44 + 8 + 4},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
	// The timestamp is nanoseconds since the epoch, high word first.
	epb := b[want[0].Len+want[1].Len:]
	ts := uint64(le.Uint32(epb[12:]))<<32 | uint64(le.Uint32(epb[16:]))
	if ts != uint64(goldenTime.UnixNano()) {
		t.Errorf("timestamp %d, want %d", ts, goldenTime.UnixNano())
	}
}

// TestRoundTrip writes packets and reads them back with the test reader.
func TestRoundTrip(t *testing.T) {
	long := bytes.Repeat([]byte{0xab}, 1514)
	tests := []struct {
		name    string
		iface   Interface
		packets []pcapPacket // TS in nanoseconds; Flags is the Direction
	}{
		{name: "no packets", iface: Interface{Name: "outside"}},
		{
			name:  "padding of every length and both directions",
			iface: Interface{Name: "inside", Comment: "namespace falab-x-fw-a", SnapLen: 2000},
			packets: []pcapPacket{
				{TS: 1, Data: []byte{}, OrigLen: 0, Flags: uint32(DirInbound)},
				{TS: 2, Data: []byte{1}, OrigLen: 1, Flags: uint32(DirOutbound)},
				{TS: 3, Data: []byte{1, 2}, OrigLen: 2},
				{TS: 4, Data: []byte{1, 2, 3}, OrigLen: 3, Flags: uint32(DirInbound)},
				{TS: 5, Data: []byte{1, 2, 3, 4}, OrigLen: 4, Flags: uint32(DirInbound)},
				{TS: uint64(goldenTime.UnixNano()), Data: garpFrame, OrigLen: uint32(len(garpFrame)), Flags: uint32(DirOutbound)},
				{TS: math.MaxInt64, Data: long, OrigLen: 65000, Flags: uint32(DirInbound)},
			},
		},
		{
			name:  "no snap length, odd names",
			iface: Interface{Name: "a", Comment: "namespace falab-ü-é"},
			packets: []pcapPacket{
				{TS: 1 << 40, Data: long, OrigLen: uint32(len(long))},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, tt.iface)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.packets {
				if err := w.WritePacket(time.Unix(0, int64(p.TS)), p.Data, int(p.OrigLen), Direction(p.Flags)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := readPcapng(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			want := &pcapFile{
				App: "falab",
				Interfaces: []pcapIface{{
					LinkType: LinkTypeEthernet, SnapLen: tt.iface.SnapLen,
					Name: tt.iface.Name, Comment: tt.iface.Comment, TSResol: 9,
				}},
				Packets: tt.packets,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("read back (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWritePacketErrors(t *testing.T) {
	tests := []struct {
		name    string
		snap    uint32
		data    []byte
		origLen int
		want    string
		wantIs  error
	}{
		{name: "over the snap length", snap: 4, data: make([]byte, 5), origLen: 5, want: "5 bytes captured (snap length 4)", wantIs: ErrPacketTooLong},
		{name: "original shorter than captured", snap: 100, data: make([]byte, 5), origLen: 4, want: "original length 4 is shorter than the 5 bytes captured"},
		{name: "original beyond 32 bits", snap: 0, data: make([]byte, 5), origLen: 1 << 32, want: "original length 4294967296 does not fit in 32 bits", wantIs: ErrPacketTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, Interface{Name: "eth0", SnapLen: tt.snap})
			if err != nil {
				t.Fatal(err)
			}
			before := buf.Len()
			err = w.WritePacket(goldenTime, tt.data, tt.origLen, DirInbound)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
				t.Errorf("error %q, want it to contain %q and be %v", err, tt.want, tt.wantIs)
			}
			if buf.Len() != before {
				t.Errorf("a refused packet wrote %d bytes", buf.Len()-before)
			}
		})
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorsAreReturned(t *testing.T) {
	if _, err := NewWriter(failWriter{}, goldenIface); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("NewWriter on a failing writer: %v", err)
	}
}

func TestReaderRejects(t *testing.T) {
	good := onePacket(t)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{name: "empty", in: nil, want: errNotPcapng},
		{name: "cut in the last block", in: good[:len(good)-1], want: io.ErrUnexpectedEOF},
		{name: "trailing length wrong", in: func() []byte {
			b := bytes.Clone(good)
			b[len(b)-4]++
			return b
		}(), want: errBadBlockLen},
		{name: "packet before interface", in: func() []byte {
			// Drop the IDB: SHB then EPB.
			shb := le.Uint32(good[4:])
			idb := le.Uint32(good[shb+4:])
			return append(bytes.Clone(good[:shb]), good[shb+idb:]...)
		}(), want: errUnknownIface},
		{name: "not a section first", in: good[le.Uint32(good[4:]):], want: errNotPcapng},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readPcapng(tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzReader feeds the reader arbitrary bytes; what it accepts and the
// writer can express is written again and must read back the same.
func FuzzReader(f *testing.F) {
	f.Add(onePacket(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := readPcapng(b)
		if err != nil {
			return
		}
		if len(file.Interfaces) != 1 {
			return
		}
		ifc := file.Interfaces[0]
		if ifc.LinkType != LinkTypeEthernet || ifc.TSResol != tsresolNanoseconds {
			return
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, Interface{Name: ifc.Name, Comment: ifc.Comment, SnapLen: ifc.SnapLen})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range file.Packets {
			if p.TS > math.MaxInt64 || p.Flags > uint32(DirOutbound) {
				return
			}
			err := w.WritePacket(time.Unix(0, int64(p.TS)), p.Data, int(p.OrigLen), Direction(p.Flags))
			if errors.Is(err, ErrPacketTooLong) || int(p.OrigLen) < len(p.Data) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		again, err := readPcapng(buf.Bytes())
		if err != nil {
			t.Fatalf("reading what the writer wrote: %v", err)
		}
		file.App = "falab"
		if diff := cmp.Diff(file, again); diff != "" {
			t.Errorf("rewritten file reads differently (-first +again):\n%s", diff)
		}
	})
}

// TestWritePacketAllocs: the per-packet path allocates nothing once the
// block buffer has grown.
func TestWritePacketAllocs(t *testing.T) {
	w, err := NewWriter(io.Discard, goldenIface)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 1514)
	if n := testing.AllocsPerRun(100, func() {
		w.WritePacket(goldenTime, frame, len(frame), DirOutbound)
	}); n != 0 {
		t.Errorf("WritePacket allocates %.1f times per packet", n)
	}
}

func BenchmarkWritePacket(b *testing.B) {
	for _, size := range []int{64, 1514, 65536} {
		b.Run(fmt.Sprintf("frame=%d", size), func(b *testing.B) {
			w, err := NewWriter(io.Discard, Interface{Name: "eth0"})
			if err != nil {
				b.Fatal(err)
			}
			frame := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				w.WritePacket(goldenTime, frame, size, DirInbound)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pkts/s")
		})
	}
}

func TestInsertVLAN(t *testing.T) {
	head := []byte{0, 0, 0, 0} // the headroom
	frame := append(bytes.Clone(head), garpFrame...)
	got := insertVLAN(frame, 0x8100, 0x0064)
	want := append(append(bytes.Clone(garpFrame[:12]), 0x81, 0x00, 0x00, 0x64), garpFrame[12:]...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tagged frame (-want +got):\n%s", diff)
	}
	short := []byte{0, 0, 0, 0, 1, 2, 3}
	if diff := cmp.Diff([]byte{1, 2, 3}, insertVLAN(short, 0x8100, 1)); diff != "" {
		t.Errorf("short frame (-want +got):\n%s", diff)
	}
}

// TestGoldenInTshark has Wireshark's own reader open the golden file, when
// tshark is installed.
func TestGoldenInTshark(t *testing.T) {
	rows := tsharkRows(t, filepath.Join("testdata", "one-packet.pcapng"), "arp.isgratuitous",
		"frame.interface_name", "frame.time_epoch", "frame.p2p_dir", "arp.src.proto_ipv4")
	want := [][]string{{"eth0", "1772366400.123456789", "1", "198.18.1.1"}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("tshark's gratuitous ARPs (-want +got):\n%s", diff)
	}
}

// tsharkRows runs tshark on a capture file and returns the fields of each
// frame that matches the display filter, skipping the test when tshark is
// not installed.
//
// tshark 4.0 lists a gratuitous ARP request with a zero target MAC (the
// RFC 5227 form falab sends) as "ARP Announcement for ADDR", not
// "Gratuitous ARP", so tests ask for the arp.isgratuitous field, which
// both forms set.
func tsharkRows(t *testing.T, path, filter string, fields ...string) [][]string {
	t.Helper()
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install -y tshark); skipping the check with Wireshark's reader")
	}
	args := []string{"-r", path, "-Y", filter, "-T", "fields"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var rows [][]string
	for line := range strings.Lines(string(out)) {
		rows = append(rows, strings.Split(strings.TrimRight(line, "\n"), "\t"))
	}
	return rows
}
