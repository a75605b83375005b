package firewall

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAPIViews(t *testing.T) {
	l := resolvedLab(t, labConfig())
	nothing(t, l.in(ifOutside, tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 1, ACK, "")))
	b, err := json.Marshal(l.fw.Drops())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(`{"no-connection":1}`, string(b)); d != "" {
		t.Errorf("Drops JSON (-want +got):\n%s", d)
	}
	var routes []string
	for _, r := range l.fw.RoutesTable() {
		s := r.Interface + " " + r.Prefix.String()
		if !r.Connected {
			s += " via " + r.NextHop.String()
		}
		routes = append(routes, s)
	}
	want := []string{"inside 198.18.1.0/24", "outside 198.19.2.0/24", "dmz 198.18.3.0/24", "outside 198.19.100.0/24 via 198.19.2.254"}
	if d := cmp.Diff(want, routes); d != "" {
		t.Errorf("routes (-want +got):\n%s", d)
	}
	st := l.fw.InterfaceStats()[ifOutside]
	if st.Name != "outside" || st.RxPackets != 3 || st.Drops != 1 || st.TxPackets != 2 || st.MAC != macStr(fwOutsideMAC[:]) {
		t.Errorf("outside stats: %+v", st)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Errorf("InterfaceInfo does not marshal: %v", err)
	}
}
