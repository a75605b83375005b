package sip

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestSippLive runs sipp's built-in uas and uac against each other on
// loopback (one call, no media), logs what the uac sent and received,
// and inspects that: the call must pass whole and leave the session
// ended. It needs the sip-tester package and is skipped in -short mode
// and when sipp is not installed; testdata/sipp_uac_messages.log is the
// same exchange, recorded, for the short suite.
func TestSippLive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sipp; not in -short")
	}
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (apt-get install sip-tester)")
	}
	dir := t.TempDir()
	uasPort, uacPort := freeUDPPort(t), freeUDPPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uas := exec.CommandContext(ctx, sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", fmt.Sprint(uasPort), "-m", "1", "-nostdin")
	uas.Dir = dir
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = uas.Process.Kill(); _ = uas.Wait() }()
	log := filepath.Join(dir, "uac.log")
	uac := exec.CommandContext(ctx, sipp, "-sn", "uac", fmt.Sprintf("127.0.0.1:%d", uasPort), "-i", "127.0.0.1",
		"-p", fmt.Sprint(uacPort), "-m", "1", "-nostdin", "-timeout", "20s", "-trace_msg", "-message_file", log)
	uac.Dir = dir
	if out, err := uac.CombinedOutput(); err != nil {
		t.Fatalf("sipp uac: %v\n%s", err, out)
	}
	msgs := sippMessages(t, log)
	if len(msgs) != 6 {
		t.Fatalf("sipp exchanged %d messages, want 6", len(msgs))
	}
	in := New(Config{})
	var callID string
	for i, b := range msgs {
		if r := in.Inspect(b, t0.Add(time.Duration(i)*time.Second)); !r.Pass() {
			t.Fatalf("message %d dropped: %v\n%s", i, r.Drop, b)
		}
		var m Message
		_ = Parse(b, &m)
		callID = string(m.CallID)
	}
	if in.state(callID) != StateEnded || in.Len()[2] != 0 {
		t.Errorf("after sipp's call: state %v, tables %v", in.state(callID), in.Len())
	}
}
