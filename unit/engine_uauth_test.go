package unit

import (
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/fwconfig"
)

// TestUAuthInUnit: a unit with firewall.aaa builds the uauth table from
// the LOCAL users' hashes, lists it as a local table, shows it as the ASA
// does, clears it by user, and steers only once its box (the unit's own
// stack, where the listener is) is attached.
func TestUAuthInUnit(t *testing.T) {
	cfg := testConfig(false)
	cfg.Firewall.UAuth = &fwconfig.UAuthConfig{Interface: "inside", ListenerPort: 1080,
		Match: []fwconfig.ACE{{Permit: true, Protocol: "tcp", DstPortLow: 80}},
		Users: []fwconfig.UAuthUser{{Name: "alice", Hash: "$argon2id$v=19$m=8192,t=1,p=1$V/wS+TicarGiWfQ2r+cjXw$DIvWDib1d/PcZ/sCXKlzoViG1ULwvAnYiBInInZMqqI"}}}
	u, err := New(cfg, testKey(7), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	u.uauth.Record("alice", netip.MustParseAddr("198.18.1.11"), time.Now())
	info := u.uauthInfo()
	if len(info.Entries) != 1 || !strings.Contains(info.Text, "user 'alice' at 198.18.1.11, authenticated") ||
		!strings.Contains(info.Listener, "not steering") {
		t.Errorf("uauth info: %+v", info)
	}
	found := false
	for _, l := range u.Status().Local {
		found = found || l.Table == "uauth" && l.Entries == 1
	}
	if !found {
		t.Errorf("no uauth local row: %+v", u.Status().Local)
	}
	rec := httptest.NewRecorder()
	u.serveClearUAuth(rec, httptest.NewRequest("POST", "/v1/uauth/clear?user=alice", nil))
	if !strings.Contains(rec.Body.String(), `"cleared":1`) || u.uauth.Len() != 0 {
		t.Errorf("clear uauth alice: %s, %d left", rec.Body.String(), u.uauth.Len())
	}
	// The box, once attached, is the stack the firewall steers to.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := u.attachBox(&box{file: w}); err != nil || !u.uauthSteering {
		t.Errorf("attach box: %v, steering %v", err, u.uauthSteering)
	}
	w.Close()
	cfg.Firewall.UAuth.Users[0].Hash = "$argon2id$nonsense"
	if _, err := New(cfg, testKey(7), nil, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a bad hash was accepted")
	}
}
