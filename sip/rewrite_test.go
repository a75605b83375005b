package sip

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// pat is the test's PAT: the inside phone 10.1.1.10 is seen outside as
// 203.0.113.5, each port moved up by 1000.
var (
	inside  = netip.MustParseAddr("10.1.1.10")
	outside = netip.MustParseAddr("203.0.113.5")
)

func realToMapped(a netip.AddrPort) (netip.AddrPort, bool) {
	if a.Addr() != inside {
		return a, false
	}
	if a.Port() == 0 {
		return netip.AddrPortFrom(outside, 0), true
	}
	return netip.AddrPortFrom(outside, a.Port()+1000), true
}

func mappedToReal(a netip.AddrPort) (netip.AddrPort, bool) {
	if a.Addr() != outside {
		return a, false
	}
	if a.Port() == 0 {
		return netip.AddrPortFrom(inside, 0), true
	}
	return netip.AddrPortFrom(inside, a.Port()-1000), true
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestRewriteOutbound: the inside caller's INVITE leaving through PAT has
// its Via, Contact, o=, c= and m= rewritten to the mapped address and
// ports, and Content-Length follows the body's new length; the result
// parses, and the far end's pinholes would be at the mapped address.
func TestRewriteOutbound(t *testing.T) {
	c := newCall()
	b := c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004))
	out, err := Rewrite(b, realToMapped)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "rewrite_invite_out.golden", out)
	var m Message
	if err := Parse(out, &m); err != nil {
		t.Fatalf("rewritten INVITE does not parse: %v", err)
	}
	if m.SDP.Media[0].Port != 7004 || m.SDP.Connection.IP != outside.As4() || m.Vias[0].Port != 6061 {
		t.Errorf("rewritten INVITE: m= %d c= %v Via port %d", m.SDP.Media[0].Port, m.SDP.Connection.IP, m.Vias[0].Port)
	}
	// The input is untouched.
	if string(b) != string(c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004))) {
		t.Error("Rewrite modified its input")
	}
}

// TestRewriteInbound: the 200 coming back carries the mapped address in
// its Via (as the outside learnt it); mapped→real restores the inside
// phone's, and the callee's own Contact and SDP are left alone. Rewriting
// the outbound INVITE back gives the original bytes.
func TestRewriteInbound(t *testing.T) {
	c := newCall()
	c.callerIP, c.callerPort = outside.String(), 6061 // as the callee sees the caller
	b := c.response("200 OK", "INVITE", 1, "z9hG4bK-1", true, true, sdp(c.calleeIP, 6000))
	back, err := Rewrite(b, mappedToReal)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "rewrite_200_in.golden", back)

	orig := newCall().request("INVITE", 1, "z9hG4bK-1", true, false, sdp("10.1.1.10", 6004))
	out, _ := Rewrite(orig, realToMapped)
	again, err := Rewrite(out, mappedToReal)
	if err != nil || string(again) != string(orig) {
		t.Errorf("round trip: %v\n%s", err, again)
	}
}

// TestRewriteDefaultPort: a Via without a port means 5060; when PAT maps
// it elsewhere the port is written out. Malformed input is refused.
func TestRewriteDefaultPort(t *testing.T) {
	b := msg("OPTIONS sip:x@192.0.2.20 SIP/2.0", []string{
		"Via: SIP/2.0/UDP 10.1.1.10;branch=z9hG4bK-o",
		"From: <sip:a@10.1.1.10>;tag=1", "To: <sip:x@192.0.2.20>", "Call-ID: o@x", "CSeq: 1 OPTIONS",
	}, "")
	out, err := Rewrite(b, realToMapped)
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := Parse(out, &m); err != nil || m.Vias[0].Port != 6060 || m.Vias[0].Addr != outside.As4() {
		t.Errorf("Via after rewrite: %v %+v\n%s", err, m.Vias[0], out)
	}
	if _, err := Rewrite([]byte("INVITE x\r\n\r\n"), realToMapped); err == nil {
		t.Error("Rewrite accepted a malformed message")
	}
}
