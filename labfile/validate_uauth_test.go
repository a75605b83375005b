package labfile

import (
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/labs"
)

const aaaSection = `
  aaa:
    authentication:
      interface: IFACE
      match: [{action: permit, protocol: tcp, source: 198.18.1.0/24, destination: any, port: "80"}]
    listener: {port: 1080}
    users: [{name: alice, hash: "$argon2id$v=19$m=8192,t=1,p=1$V/wS+TicarGiWfQ2r+cjXw$DIvWDib1d/PcZ/sCXKlzoViG1ULwvAnYiBInInZMqqI"}]
    timeout_uauth: {absolute: 5m, inactivity: 1m}
`

// TestAAASection: the lab file's firewall.aaa reaches the units' config;
// an unknown interface is reported at the lab file's own field.
func TestAAASection(t *testing.T) {
	base, _ := labs.Get("default")
	with := func(iface string) string {
		return strings.Replace(string(base), "\n  access_groups:", strings.ReplaceAll(aaaSection, "IFACE", iface)+"  access_groups:", 1)
	}
	l, err := Load("x.yaml", []byte(with("inside")))
	if err != nil {
		t.Fatal(err)
	}
	u := l.FirewallConfig(l.Units[0]).UAuth
	if u == nil || u.Interface != "inside" || u.ListenerPort != 1080 || len(u.Users) != 1 || u.Users[0].Name != "alice" ||
		u.Absolute != 5*time.Minute || u.Inactivity != time.Minute || len(u.Match) != 1 || u.Match[0].DstPortLow != 80 {
		t.Errorf("uauth config: %+v", u)
	}
	_, err = Load("x.yaml", []byte(with("dmz")))
	if err == nil || !strings.Contains(err.Error(), "firewall.aaa.authentication.interface") {
		t.Errorf("unknown interface: %v", err)
	}
}
