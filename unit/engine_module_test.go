package unit

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/firewall"
	"github.com/falab/falab/fwconfig"
)

// TestModuleInUnit: a unit with firewall.module builds the module, hands
// it to the firewall through the adapter (a signature split over two
// segments of a flow it saw open is detected; a flow met mid-stream, as
// after a takeover, passes under fail-open and counts as uninspected), and
// lists it in its status, its module answer and its local tables.
func TestModuleInUnit(t *testing.T) {
	cfg := testConfig(false)
	cfg.Firewall.Module = &fwconfig.ModuleConfig{Enabled: true, FailMode: fwconfig.ModuleFailOpen,
		Signatures: []fwconfig.ModuleSignature{{Name: "evil", Pattern: "EVILPAYLOAD"}},
		Match:      []fwconfig.ACE{{Permit: true, Protocol: "tcp", DstPortLow: 9000}}}
	u, err := New(cfg, testKey(7), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a := moduleAdapter{u.module}
	now := time.Unix(1000, 0)
	flow := firewall.Tuple{Proto: 6, Src: [4]byte{198, 18, 1, 11}, Dst: [4]byte{198, 18, 2, 11}, SrcPort: 40000, DstPort: 9000}
	const syn, ack = 0x02, 0x10
	steps := []struct {
		seq     uint32
		flags   uint8
		payload string
		want    firewall.ModuleVerdict
	}{{100, syn, "", firewall.ModulePass}, {101, ack, "xxEVIL", firewall.ModulePass}, {107, ack, "PAYLOADyy", firewall.ModuleDetected}}
	for i, s := range steps {
		if got := a.Segment(flow, true, s.seq, s.flags, []byte(s.payload), now); got != s.want {
			t.Errorf("segment %d: %v, want %v", i, got, s.want)
		}
	}
	mid := flow
	mid.SrcPort = 40001
	if got := a.Segment(mid, true, 5000, ack, []byte("PAYLOAD"), now); got != firewall.ModulePass {
		t.Errorf("mid-stream segment under fail-open: %v", got)
	}
	info := u.moduleInfo(true)
	if info.Detected != 1 || info.UninspectedFlows != 1 || info.Flows != 2 || info.FailMode != "fail-open" || !strings.Contains(info.Text, "Module ips on fw-a") {
		t.Errorf("module info: %+v", info)
	}
	st := u.Status()
	if st.Module == nil || st.Module.Text != "" || st.Module.Flows != 2 {
		t.Errorf("status module: %+v", st.Module)
	}
	found := false
	for _, l := range st.Local {
		found = found || l.Table == "module" && l.Entries == 2 && l.Reason == reasonModule
	}
	if !found {
		t.Errorf("no local module row: %+v", st.Local)
	}
}
