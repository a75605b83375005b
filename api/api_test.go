package api

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/fwconfig"
)

// TestKeyFile: a key written to its file reads back the same; a file of
// the wrong length is refused with ErrBadKey; the key never prints.
func TestKeyFile(t *testing.T) {
	k, err := NewKey()
	if err != nil || k.IsZero() {
		t.Fatalf("NewKey: %v %v", k.IsZero(), err)
	}
	path := filepath.Join(t.TempDir(), "failover.key")
	if err := WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	got, err := ReadKeyFile(path)
	if err != nil || got != k {
		t.Fatalf("ReadKeyFile: %v (same %v)", err, got == k)
	}
	if _, err := ParseKey(k.Hex()[:10]); !errors.Is(err, ErrBadKey) {
		t.Errorf("short key: %v, want ErrBadKey", err)
	}
	if strings.Contains(k.String(), k.Hex()[:8]) {
		t.Error("String shows the key")
	}
}

// TestUnitConfigRoundTrip: what `falab up` writes, `falab unit` reads back
// whole, firewall config included.
func TestUnitConfigRoundTrip(t *testing.T) {
	c := &UnitConfig{Name: "fw-a", Peer: "fw-b", Socket: "/run/x.sock", UnitPoll: 20 * time.Millisecond,
		LocalAddr: netip.MustParseAddr("198.19.255.1"),
		Firewall: fwconfig.Config{Interfaces: []fwconfig.InterfaceConfig{{Name: "inside", SecurityLevel: 100,
			Prefix: netip.MustParsePrefix("198.18.1.1/24"), ActiveMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, MTU: 9000}}}}
	path := filepath.Join(t.TempDir(), "fw-a.json")
	if err := WriteUnitConfig(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := ReadUnitConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(c)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Errorf("round trip:\n%s\n%s", a, b)
	}
}

// TestClient: the client speaks to a unit's socket and decodes its
// answers; an error status comes back as an error with the server's text.
func TestClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "u.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(Status{Unit: "fw-a", State: "Active", Replication: ReplicationStats{Tables: []TableStats{{Table: "conn", Sent: 3}}}})
	})
	mux.HandleFunc("GET /v1/conns", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("offset") != "5" {
			http.Error(w, "bad offset", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(Page[Conn]{Total: 6, Offset: 5, Entries: []Conn{{Protocol: "tcp"}}})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	c := NewClient(sock)
	defer c.Close()
	st, err := c.Status(t.Context())
	if err != nil || st.Unit != "fw-a" || st.Replication.Tables[0].Table != "conn" {
		t.Fatalf("Status: %+v %v", st, err)
	}
	p, err := c.Conns(t.Context(), 5, 10)
	if err != nil || p.Total != 6 || len(p.Entries) != 1 {
		t.Fatalf("Conns: %+v %v", p, err)
	}
	if _, err := c.Conns(t.Context(), 0, 10); err == nil || !strings.Contains(err.Error(), "bad offset") {
		t.Errorf("error status: %v", err)
	}
}
