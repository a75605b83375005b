package capture

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Two interfaces in one section, each packet on its own, with a comment
// where a role changed: what --follow-active writes. Our reader and, when
// installed, tshark read it back.
func TestMultiWriterTwoInterfacesAndComments(t *testing.T) {
	var buf bytes.Buffer
	a := Interface{Name: "fw-a:outside", SnapLen: DefaultSnapLen}
	b := Interface{Name: "fw-b:outside", SnapLen: DefaultSnapLen}
	w, err := NewMultiWriter(&buf, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacketOn(0, goldenTime, garpFrame, len(garpFrame), DirInbound, ""); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacketOn(1, goldenTime.Add(1e6), garpFrame, len(garpFrame), DirOutbound, "fw-b: Standby Ready -> Active"); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacketOn(2, goldenTime, garpFrame, len(garpFrame), DirInbound, ""); err == nil {
		t.Error("a packet on an undeclared interface was written")
	}
	f, err := readPcapng(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Interfaces) != 2 || f.Interfaces[0].Name != "fw-a:outside" || f.Interfaces[1].Name != "fw-b:outside" {
		t.Fatalf("interfaces %+v, want fw-a:outside and fw-b:outside", f.Interfaces)
	}
	if len(f.Packets) != 2 || f.Packets[0].Iface != 0 || f.Packets[1].Iface != 1 {
		t.Fatalf("packets %+v, want one on each interface", f.Packets)
	}
	if f.Packets[1].Comment != "fw-b: Standby Ready -> Active" || f.Packets[1].Flags != uint32(DirOutbound) || f.Packets[0].Comment != "" {
		t.Errorf("packets' comment/flags %q/%d and %q, want the role change on the second, outbound", f.Packets[1].Comment, f.Packets[1].Flags, f.Packets[0].Comment)
	}
	path := filepath.Join(t.TempDir(), "follow.pcapng")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	rows := tsharkRows(t, path, "frame.comment", "frame.interface_name", "frame.comment")
	if len(rows) != 1 || rows[0][0] != "fw-b:outside" || rows[0][1] != "fw-b: Standby Ready -> Active" {
		t.Errorf("tshark's commented frames: %q, want one on fw-b:outside", rows)
	}
}

// A follow of nothing is an error, not a panic in Run.
func TestOpenFollowNeedsASource(t *testing.T) {
	if _, err := OpenFollow(nil, Options{}); err == nil {
		t.Error("OpenFollow(nil) succeeded")
	}
}
