package fwconfig

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
)

func base() Config {
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }
	return Config{
		Interfaces: []InterfaceConfig{
			{Name: "inside", SecurityLevel: 100, Prefix: netip.MustParsePrefix("198.18.1.1/24"), StandbyAddr: netip.MustParseAddr("198.18.1.2"), ActiveMAC: mac(1), StandbyMAC: mac(2)},
			{Name: "outside", SecurityLevel: 0, Prefix: netip.MustParsePrefix("198.18.2.1/24"), StandbyAddr: netip.MustParseAddr("198.18.2.2"), ActiveMAC: mac(3), StandbyMAC: mac(4)},
		},
		Routes: []Route{{Interface: "outside", Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHop: netip.MustParseAddr("198.18.2.254")}},
		NAT: []NATRule{
			{Kind: NATStatic, RealInterface: "inside", Real: netip.MustParsePrefix("198.18.1.12/32"), MappedInterface: "outside", Mapped: netip.MustParseAddr("198.18.2.112")},
			{Kind: NATDynamicPAT, RealInterface: "inside", Real: netip.MustParsePrefix("198.18.1.0/24"), MappedInterface: "outside"},
		},
		AccessLists:  map[string][]ACE{"outside_in": {{Permit: true, Protocol: "tcp", DstPortLow: 80}}},
		AccessGroups: []AccessGroup{{AccessList: "outside_in", Interface: "outside"}},
	}
}

// TestCheck breaks a valid config one field at a time: each mistake is
// reported at the field path that holds it, and nothing else is.
func TestCheck(t *testing.T) {
	if ps := Check(base()); len(ps) != 0 {
		t.Fatalf("base config: %v", ps)
	}
	tests := []struct {
		name   string
		break_ func(c *Config)
		want   []string // paths
	}{
		{"mtu too big", func(c *Config) { c.Interfaces[1].MTU = 9001 }, []string{"interfaces[1].mtu"}},
		{"mtu too small", func(c *Config) { c.Interfaces[0].MTU = 100 }, []string{"interfaces[0].mtu"}},
		{"security level", func(c *Config) { c.Interfaces[0].SecurityLevel = 101 }, []string{"interfaces[0].security_level"}},
		{"duplicate name", func(c *Config) { c.Interfaces[1].Name = "inside" }, nil}, // checked below: more follow
		{"standby outside subnet", func(c *Config) { c.Interfaces[0].StandbyAddr = netip.MustParseAddr("198.18.9.2") }, []string{"interfaces[0].standby_address"}},
		{"short MAC", func(c *Config) { c.Interfaces[0].StandbyMAC = nil }, []string{"interfaces[0].standby_mac"}},
		{"route via elsewhere", func(c *Config) { c.Routes[0].NextHop = netip.MustParseAddr("198.18.1.254") }, []string{"routes[0].next_hop"}},
		{"route unknown interface", func(c *Config) { c.Routes[0].Interface = "dmz" }, []string{"routes[0].interface"}},
		{"static NAT of a network", func(c *Config) { c.NAT[0].Real = netip.MustParsePrefix("198.18.1.0/24") }, []string{"nat[0].real"}},
		{"mapped outside subnet", func(c *Config) { c.NAT[0].Mapped = netip.MustParseAddr("198.18.7.1") }, []string{"nat[0].mapped"}},
		{"NAT same sides", func(c *Config) {
			c.NAT[0].MappedInterface = "inside"
			c.NAT[0].Mapped = netip.MustParseAddr("198.18.1.112")
		}, []string{"nat[0].mapped_interface"}},
		{"NAT kind", func(c *Config) { c.NAT[1].Kind = 9 }, []string{"nat[1].kind"}},
		{"PAT ports", func(c *Config) { c.NAT[1].PortLow, c.NAT[1].PortHigh = 2000, 1000 }, []string{"nat[1].port_low"}},
		{"two static on one address", func(c *Config) { c.NAT = append(c.NAT, c.NAT[0]) }, []string{"nat[2].mapped"}},
		{"ACL protocol", func(c *Config) { c.AccessLists["outside_in"][0].Protocol = "gre" }, []string{"access_lists.outside_in[0].protocol"}},
		{"ACL ports", func(c *Config) { c.AccessLists["outside_in"][0].DstPortHigh = 79 }, []string{"access_lists.outside_in[0].dst_port_high"}},
		{"unknown list", func(c *Config) { c.AccessGroups[0].AccessList = "nope" }, []string{"access_groups[0].access_list"}},
		{"two groups", func(c *Config) { c.AccessGroups = append(c.AccessGroups, c.AccessGroups[0]) }, []string{"access_groups[1].interface"}},
		{"fragment", func(c *Config) { c.Fragment.Chain = -1 }, []string{"fragment.chain"}},
		{"gtp tunnel limit", func(c *Config) { c.Inspect.GTP = &GTPInspect{TunnelLimit: -1} }, []string{"inspect.gtp.tunnel_limit"}},
		{"mode", func(c *Config) { c.Mode = "bridged" }, []string{"mode"}},
		{"management in routed mode", func(c *Config) { c.ManagementAddr = netip.MustParsePrefix("198.18.1.5/24") }, []string{"management_address"}},
		{"transparent with routes and NAT", func(c *Config) {
			c.Mode = ModeTransparent
			for i := range c.Interfaces {
				c.Interfaces[i].Prefix, c.Interfaces[i].StandbyAddr = netip.Prefix{}, netip.Addr{}
			}
			c.AccessGroups = nil
		}, []string{"routes", "nat"}},
		{"802.3 length", func(c *Config) {
			*c = Config{Mode: ModeTransparent, Interfaces: base().Interfaces, AllowEtherTypes: []uint16{0x88cc, 0x05dc}}
			for i := range c.Interfaces {
				c.Interfaces[i].Prefix, c.Interfaces[i].StandbyAddr = netip.Prefix{}, netip.Addr{}
			}
		}, []string{"allow_ether_types[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.break_(&c)
			var got []string
			for _, p := range Check(c) {
				got = append(got, p.Path)
			}
			if tt.want == nil {
				if len(got) == 0 {
					t.Fatal("no problem reported")
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("paths %q, want %q (%v)", got, tt.want, Check(c))
			}
		})
	}
}

// TestValidateAllAtOnce: Validate returns every problem in one error that
// wraps ErrInvalid, not only the first.
func TestValidateAllAtOnce(t *testing.T) {
	c := base()
	c.Interfaces[0].MTU = 1
	c.Interfaces[1].SecurityLevel = -1
	c.NAT[1].Kind = 0
	err := Validate(c)
	var ie *InvalidError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &ie) {
		t.Fatalf("error %v: want an *InvalidError wrapping ErrInvalid", err)
	}
	if len(ie.Problems) != 3 {
		t.Errorf("%d problems, want 3: %v", len(ie.Problems), ie.Problems)
	}
	if Validate(base()) != nil {
		t.Error("a valid config fails")
	}
}

// TestMaxFrameLen: the longest frame is the largest MTU with an Ethernet
// header and one VLAN tag; MTUs beyond MaxMTU never enlarge it.
func TestMaxFrameLen(t *testing.T) {
	c := base()
	if got := c.MaxFrameLen(); got != 1518 {
		t.Errorf("default: %d, want 1518", got)
	}
	c.Interfaces[1].MTU = 9000
	if got := c.MaxFrameLen(); got != 9018 {
		t.Errorf("MTU 9000: %d, want 9018", got)
	}
}
