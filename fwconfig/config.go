package fwconfig

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// ethernetHeaderLen is an Ethernet II header without a VLAN tag.
const ethernetHeaderLen = 14

// Config is the static configuration of one unit's data plane, the
// equivalent of the ASA's interface, route, nat, access-list, access-group
// and timeout commands. New validates it and compiles it; it is not
// changed afterwards.
//
// The JSON names are the field paths Validate reports.
type Config struct {
	Interfaces   []InterfaceConfig `json:"interfaces"`
	Routes       []Route           `json:"routes"`
	NAT          []NATRule         `json:"nat"`
	AccessLists  map[string][]ACE  `json:"access_lists"`
	AccessGroups []AccessGroup     `json:"access_groups"`
	Timeouts     Timeouts          `json:"timeouts"`
	// Fragment are the reassembly limits (ASA "fragment size|chain|timeout"),
	// the same for every interface.
	Fragment FragmentLimits `json:"fragment"`
	Limits   Limits         `json:"limits"`
	// Inspect turns on application inspection engines (inspect.go).
	Inspect Inspect `json:"inspect"`

	// Mode is ModeRouted (the default when empty) or ModeTransparent.
	// In transparent mode the unit bridges its data interfaces inside one
	// subnet: interfaces, Routes and NAT carry no addresses and must be
	// empty, and the unit owns only its management addresses.
	Mode string `json:"mode"`
	// ManagementAddr is the transparent unit's own address with the
	// subnet's mask, answered (ARP and ping) on every data interface by
	// the active unit; zero for none. Transparent mode only.
	ManagementAddr netip.Prefix `json:"management_address"`
	// ManagementStandbyAddr is answered by the standby unit, in
	// ManagementAddr's subnet; zero for none. Transparent mode only.
	ManagementStandbyAddr netip.Addr `json:"management_standby_address"`
	// AllowEtherTypes are the EtherTypes bridged (without inspection) in
	// transparent mode besides IPv4 and ARP, which are always bridged
	// (IPv4 statefully). Values below 0x0600 are 802.3 lengths, not
	// EtherTypes, and are refused.
	AllowEtherTypes []uint16 `json:"allow_ether_types"`
	// NoRandomSequence turns off TCP initial sequence number
	// randomization (ASA "set connection random-sequence-number
	// disable"). The zero value keeps it on: every TCP connection gets a
	// random offset added to the initiator's sequence numbers, so that a
	// host with a guessable ISN generator is not exposed beyond the
	// firewall.
	NoRandomSequence bool `json:"no_random_sequence"`

	// DisableReversePathCheck turns off the reverse-path check (on by
	// default, as ASA "ip verify reverse-path" on every interface): a
	// packet is dropped (rpf-violated) unless the route to its source
	// leaves by the interface it came in on. Transparent mode has no
	// routes and never checks.
	DisableReversePathCheck bool `json:"disable_reverse_path_check"`
	// DisableMartianCheck turns off the drop of packets with impossible
	// addresses (on by default): martian or spoofed sources (0/8, 127/8,
	// multicast, 240/4, a directed broadcast, the unit's own addresses),
	// martian destinations and source equal to destination.
	DisableMartianCheck bool `json:"disable_martian_check"`
}

// Modes of Config.Mode.
const (
	ModeRouted      = "routed"
	ModeTransparent = "transparent"
)

// InterfaceConfig is one data interface. Name is the ASA nameif and the
// Linux interface name inside the unit's namespace.
type InterfaceConfig struct {
	Name          string           `json:"name"`
	SecurityLevel int              `json:"security_level"`  // 0..100; traffic flows freely only from higher to lower
	Prefix        netip.Prefix     `json:"address"`         // active address with its mask, e.g. 198.18.1.1/24; zero in transparent mode
	StandbyAddr   netip.Addr       `json:"standby_address"` // standby address in the same network; zero if none (always in transparent mode)
	ActiveMAC     net.HardwareAddr `json:"active_mac"`      // source MAC and ARP answer while active (for the management address in transparent mode)
	StandbyMAC    net.HardwareAddr `json:"standby_mac"`     // source MAC and ARP answer while standby
	// MTU is the largest IPv4 packet the interface sends, MinMTU..MaxMTU;
	// 0 means 1500. Larger packets are fragmented, or refused with ICMP
	// "fragmentation needed" when they have DF set.
	MTU int `json:"mtu"`
}

// MTU bounds: those the lab accepts for its links (an ASA allows 64-9198).
const (
	DefaultMTU = 1500
	MinMTU     = 576
	MaxMTU     = 9000
)

// MaxFrameLen returns the longest Ethernet frame (without FCS) any of the
// configured interfaces carries: the largest MTU, the Ethernet header and
// room for one VLAN tag. Ports' receive buffers (an AF_PACKET ring slot)
// must hold that much.
func (c Config) MaxFrameLen() int {
	m := DefaultMTU
	for _, ic := range c.Interfaces {
		m = max(m, min(ic.MTU, MaxMTU))
	}
	return m + ethernetHeaderLen + 4
}

// FragmentLimits bound IPv4 reassembly (see fragment.go). Zero fields take
// the ASA defaults.
type FragmentLimits struct {
	// Size is how many fragments may await reassembly per interface
	// (ASA "fragment size", default 200).
	Size int `json:"size"`
	// Chain is the most fragments one datagram may have (ASA "fragment
	// chain", default 24).
	Chain int `json:"chain"`
	// Timeout is how long a datagram may take to arrive whole (ASA
	// "fragment timeout", default 5s).
	Timeout time.Duration `json:"timeout"`
	// Memory bounds the bytes of buffers the whole unit holds for
	// fragments awaiting reassembly, whatever the interfaces' sizes add
	// up to (default 4 MiB).
	Memory int `json:"memory"`
}

// WithDefaults returns l with every zero field set to its default.
func (l FragmentLimits) WithDefaults() FragmentLimits {
	if l.Size <= 0 {
		l.Size = 200
	}
	if l.Chain <= 0 {
		l.Chain = 24
	}
	if l.Timeout <= 0 {
		l.Timeout = 5 * time.Second
	}
	if l.Memory <= 0 {
		l.Memory = 4 << 20
	}
	return l
}

// Route is a static route. Connected routes come from the interfaces.
type Route struct {
	Interface string       `json:"interface"`
	Prefix    netip.Prefix `json:"prefix"`
	NextHop   netip.Addr   `json:"next_hop"`
}

// NATKind says which kind of NAT rule a NATRule is.
type NATKind uint8

// NAT rule kinds.
const (
	// NATDynamicPAT maps every host of Real to one address with port
	// translation (ASA "nat (inside,outside) dynamic interface").
	NATDynamicPAT NATKind = iota + 1
	// NATStatic maps one real host to one mapped address both ways
	// (ASA "nat (inside,outside) static").
	NATStatic
)

// String returns "pat" or "static".
func (k NATKind) String() string {
	switch k {
	case NATDynamicPAT:
		return "pat"
	case NATStatic:
		return "static"
	}
	return fmt.Sprintf("NATKind(%d)", uint8(k))
}

// NATRule is one NAT rule. For NATStatic, Real must be a single host
// (a /32). Mapped zero means the mapped interface's active address.
// PortLow and PortHigh bound the PAT port pool (zero: 1024-65535).
type NATRule struct {
	Kind            NATKind      `json:"kind"`
	RealInterface   string       `json:"real_interface"`
	Real            netip.Prefix `json:"real"`
	MappedInterface string       `json:"mapped_interface"`
	Mapped          netip.Addr   `json:"mapped"`
	PortLow         uint16       `json:"port_low"`
	PortHigh        uint16       `json:"port_high"`
}

// ACE is one access control entry. Protocol is "ip", "tcp", "udp" or
// "icmp"; an invalid (zero) prefix means any; DstPortLow and DstPortHigh
// both zero mean any port.
type ACE struct {
	Permit      bool         `json:"permit"`
	Protocol    string       `json:"protocol"`
	Source      netip.Prefix `json:"source"`
	Destination netip.Prefix `json:"destination"`
	DstPortLow  uint16       `json:"dst_port_low"`
	DstPortHigh uint16       `json:"dst_port_high"`
}

// AccessGroup binds an access list inbound on an interface. As on the ASA
// the list then replaces the security-level rule for traffic entering there.
type AccessGroup struct {
	AccessList string `json:"access_list"`
	Interface  string `json:"interface"`
}

// Timeouts are the idle timeouts of the tables (ASA "timeout" command).
// Zero fields take the ASA defaults.
type Timeouts struct {
	Conn       time.Duration `json:"conn"`        // established TCP, default 1h
	HalfClosed time.Duration `json:"half_closed"` // TCP after the first FIN, default 10m
	TimeWait   time.Duration `json:"time_wait"`   // TCP after both FINs are acknowledged, default 30s
	Embryonic  time.Duration `json:"embryonic"`   // TCP before the handshake completes, default 30s
	UDP        time.Duration `json:"udp"`         // default 2m
	ICMP       time.Duration `json:"icmp"`        // default 2s
	Xlate      time.Duration `json:"xlate"`       // static and dynamic xlates (kept for the ASA's sake), default 3h
	PATXlate   time.Duration `json:"pat_xlate"`   // a PAT xlate after its last connection, default 30s
	ARP        time.Duration `json:"arp"`         // ARP entries, default 4h
	MACAddress time.Duration `json:"mac_address"` // bridge (MAC address) table entries in transparent mode, default 5m
}

// WithDefaults returns t with every zero field set to its ASA default.
func (t Timeouts) WithDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Conn, time.Hour)
	def(&t.HalfClosed, 10*time.Minute)
	def(&t.TimeWait, 30*time.Second)
	def(&t.Embryonic, 30*time.Second)
	def(&t.UDP, 2*time.Minute)
	def(&t.ICMP, 2*time.Second)
	def(&t.Xlate, 3*time.Hour)
	def(&t.PATXlate, 30*time.Second)
	def(&t.ARP, 4*time.Hour)
	def(&t.MACAddress, 5*time.Minute)
	return t
}

// Limits bound what one host, or a flood, can take of the unit's tables,
// like the ASA's "set connection embryonic-conn-max",
// "set connection per-client-embryonic-max" and "switchport
// port-security maximum". Zero fields take the defaults; a negative field
// means no limit. Replicated entries are never refused by a limit (the
// standby must hold what the active holds); only new flows and new
// stations on the active are.
type Limits struct {
	// PATPortsPerHost bounds the PAT xlates (mapped ports) one real host
	// may hold over all protocols and mapped addresses, so that one host
	// cannot take a pool that all the inside shares. Default 4096.
	PATPortsPerHost int `json:"pat_ports_per_host"`
	// EmbryonicMax bounds the unit's half-open TCP connections (SYN seen,
	// handshake not complete); beyond it new SYNs are dropped
	// (embryonic-limit). Default 65536.
	EmbryonicMax int `json:"embryonic_max"`
	// EmbryonicPerClient bounds the half-open TCP connections one
	// initiator may have. Default 1024.
	EmbryonicPerClient int `json:"embryonic_per_client"`
	// MACsPerInterface bounds the stations learnt behind one interface in
	// transparent mode (port security), so that a MAC flood on one
	// segment cannot displace the stations of the others from the table;
	// frames from a new station beyond it are dropped (l2-mac-limit).
	// Default 1024.
	MACsPerInterface int `json:"macs_per_interface"`
}
