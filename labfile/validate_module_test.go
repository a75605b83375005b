package labfile

import (
	"strings"
	"testing"

	"github.com/falab/falab/fwconfig"
	"github.com/falab/falab/labs"
)

const moduleSection = `
  module:
    fail_mode: %s
    signatures: [{name: evil, pattern: EVILPAYLOAD}]
    match:
      - {action: permit, protocol: tcp, destination: any, port: "9000"}
`

// TestModuleSection: the lab file's firewall.module reaches the units'
// config (enabled by default, the match as an ACL); a bad fail mode is
// reported at its own line by the units' validator.
func TestModuleSection(t *testing.T) {
	base, _ := labs.Get("default")
	good := strings.Replace(string(base), "\n  access_groups:", strings.ReplaceAll(moduleSection, "%s", "fail-close")+"  access_groups:", 1)
	l, err := Load("x.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	m := l.FirewallConfig(l.Units[0]).Module
	if m == nil || !m.Enabled || m.FailMode != fwconfig.ModuleFailClose || len(m.Signatures) != 1 || m.Signatures[0].Pattern != "EVILPAYLOAD" ||
		len(m.Match) != 1 || !m.Match[0].Permit || m.Match[0].DstPortLow != 9000 {
		t.Errorf("module config: %+v", m)
	}
	bad := strings.Replace(string(base), "\n  access_groups:", strings.ReplaceAll(moduleSection, "%s", "fail-maybe")+"  access_groups:", 1)
	_, err = Load("x.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "firewall.module.fail_mode") || !strings.Contains(err.Error(), `"fail-maybe" is not a fail mode`) {
		t.Errorf("bad fail mode: %v", err)
	}
}
