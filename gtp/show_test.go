package gtp

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

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
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestShowPDPContext checks both forms of the listing against golden text
// in the ASA's format, including the TID as the ASA prints it.
func TestShowPDPContext(t *testing.T) {
	in, _ := established(t, Config{})
	mustPass(t, in.User(sgsnU, ggsnU, gpdu(t, ggsnTEIDD)))
	mustPass(t, in.User(ggsnU, sgsnU, gpdu(t, sgsnTEIDD)))
	mustPass(t, in.User(ggsnU, sgsnU, gpdu(t, sgsnTEIDD)))
	l := in.Listing(t0.Add(13 * time.Second))
	for _, detail := range []bool{false, true} {
		var buf bytes.Buffer
		if err := WritePDPContexts(&buf, l, detail); err != nil {
			t.Fatal(err)
		}
		name := "pdp-context.golden"
		if detail {
			name = "pdp-context-detail.golden"
		}
		golden(t, name, buf.Bytes())
	}
	var buf bytes.Buffer
	_ = WritePDPContexts(&buf, New(Config{}).Listing(t0), true)
	if got := buf.String(); got != "0 in use, 0 most used, timeout 0:30:00\n" {
		t.Errorf("empty listing %q", got)
	}
}

// TestTIDString: the ASA's sample output pairs IMSI 214365870921435 and
// NSAPI 2 with TID 1234567890123425.
func TestTIDString(t *testing.T) {
	tid := TID{IMSI: [8]byte{0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0xf5}, NSAPI: 2}
	if got := tid.String(); got != "1234567890123425" {
		t.Errorf("TID %q", got)
	}
	if got := tid.IMSIString(); got != "214365870921435" {
		t.Errorf("IMSI %q", got)
	}
}
