package labfile

import (
	"github.com/falab/falab/fwconfig"
	"net"
	"net/netip"
	"time"
)

// Lab is a validated, resolved lab: every default filled in, every name
// checked, every address parsed. Load returns it; nothing else makes one.
type Lab struct {
	Name        string
	Description string
	Mode        string // "routed" or "transparent"
	File        string // where it was read from ("builtin:default" for embedded labs)

	// Offloads: offloads on on every veth, super-frames through the units
	// (Spec.Offloads).
	Offloads bool

	Hosts    []Host
	Switches []Switch
	Units    []Unit // primary first, then secondary
	Links    []Link

	Firewall Firewall
	Failover Failover
}

// Host is a plain namespace where users run any program.
type Host struct {
	Name       string
	Interfaces []HostInterface
	Gateway    netip.Addr // zero when none
	Routes     []HostRoute
	Daemons    []Daemon
}

// Daemon is a program a host runs while the lab is up (see DaemonSpec).
// Placeholders ({dir}, {lab}, {node}) are kept as written: the lab
// runtime, which knows the state directory, expands them.
type Daemon struct {
	Name       string
	Command    []string
	Package    string       // the Debian package with the program, if given
	Files      []DaemonFile // in name order
	Env        []string     // KEY=VALUE, sorted by key
	PrivateRun bool
	ReadyLog   string        // a regular expression, valid; empty when none
	ReadyWait  time.Duration // a fixed delay; 0 when none
	// ReadyTimeout bounds the wait for ReadyLog.
	ReadyTimeout time.Duration
	// Field and Line say where the daemon is written, for problems found
	// when the lab comes up (a program missing from PATH).
	Field string
	Line  int
}

// DaemonFile is a file written into the node's directory for a daemon.
type DaemonFile struct {
	Name    string // relative, clean, without ".."
	Content string
}

// DefaultDaemonReadyTimeout bounds the wait for a daemon's ready line.
const DefaultDaemonReadyTimeout = 10 * time.Second

// HostInterface is one kernel interface of a host.
type HostInterface struct {
	Name string
	Addr netip.Prefix
	MAC  net.HardwareAddr
	MTU  int
}

// HostRoute is a static route on a host.
type HostRoute struct {
	To  netip.Prefix
	Via netip.Addr
}

// Switch is a Linux bridge in its own namespace.
type Switch struct{ Name string }

// Unit is one firewall unit.
type Unit struct {
	Name string
	Role string // "primary" or "secondary"
	// CPUs is the unit process's GOMAXPROCS (NodeSpec.CPUs, defaulted).
	CPUs int
	// MACs are the burned-in MACs of the unit's interfaces, by interface
	// name (data interfaces, failover and state links).
	MACs map[string]net.HardwareAddr
}

// Endpoint is one end of a link: a node's interface, or a switch (whose
// port name falab chooses).
type Endpoint struct {
	Node  string
	Iface string // interface name in the node's namespace
}

// Link is a cable between two endpoints.
type Link struct{ A, B Endpoint }

// Firewall is the resolved configuration both units run.
type Firewall struct {
	Interfaces   []FirewallInterface
	Routes       []FirewallRoute
	NAT          []NATRule
	AccessLists  map[string][]ACE
	AccessGroups []AccessGroup
	Timeouts     Timeouts
	// Management addresses (transparent mode only).
	ManagementAddr        netip.Prefix
	ManagementStandbyAddr netip.Addr
	// Inspect are the inspection engines turned on, with their settings.
	Inspect fwconfig.Inspect
	// Module is the service module; nil when the lab has none.
	Module *fwconfig.ModuleConfig
	// UAuth is cut-through proxy authentication; nil when the lab has none.
	UAuth      *fwconfig.UAuthConfig
	CryptoMaps []fwconfig.CryptoMap
}

// FirewallInterface is a data interface (ASA nameif).
type FirewallInterface struct {
	Name              string
	SecurityLevel     int
	Addr              netip.Prefix // active IP and subnet; zero in transparent mode
	StandbyAddr       netip.Addr
	VirtualMAC        net.HardwareAddr // active virtual MAC (mac_mode virtual)
	StandbyVirtualMAC net.HardwareAddr
	Monitor           bool
	Switch            string // the switch both units' interfaces are cabled to
}

// FirewallRoute is a static route of the firewall.
type FirewallRoute struct {
	Interface string
	To        netip.Prefix
	Via       netip.Addr
}

// NAT rule types.
const (
	NATDynamicPAT = "dynamic-pat"
	NATStatic     = "static"
)

// NATRule is one NAT rule. For dynamic-pat a zero Mapped means the mapped
// interface's active address.
type NATRule struct {
	Type            string
	RealInterface   string
	Real            netip.Prefix
	MappedInterface string
	Mapped          netip.Addr
}

// ACE is one access-list entry. Addresses are real (untranslated), as on
// ASA 8.3 and later.
type ACE struct {
	Permit      bool
	Protocol    string // ip, tcp, udp, icmp
	Source      netip.Prefix
	Destination netip.Prefix
	PortLow     uint16 // 0,0 means any port
	PortHigh    uint16
	Line        int // line in the lab file, for hit counters and messages
}

// AccessGroup binds an access list inbound on an interface.
type AccessGroup struct {
	AccessList string
	Interface  string
}

// Timeouts are the idle timeouts of the firewall's tables.
type Timeouts struct {
	Conn, HalfClosed, Embryonic, UDP, ICMP, Xlate, ARP, MACAddress time.Duration
}

// MAC modes.
const (
	MACVirtual  = "virtual"
	MACBurnedIn = "burned-in"
)

// Failover is the resolved failover configuration.
type Failover struct {
	Link              FailoverLink
	StateLink         *FailoverLink // nil: state goes over the failover link
	UnitPoll          time.Duration
	UnitHold          time.Duration
	InterfacePoll     time.Duration
	InterfaceHold     time.Duration
	NegotiationWindow time.Duration
	MACMode           string
	HTTPReplication   bool
	Key               string // a passphrase or 64 hex digits (see FailoverKey); empty: a random key is made per lab at up
	// NoReplicate names engine tables not replicated (failover.replicate), sorted.
	NoReplicate []string
	// NoIPsecReplication: failover.replicate.ipsec is false (a negative
	// control: the peer must re-establish its tunnel after a failover).
	NoIPsecReplication bool
}

// FailoverLink is the failover or state link.
type FailoverLink struct {
	Interface        string
	PrimaryAddress   netip.Prefix
	SecondaryAddress netip.Prefix
}

// Unit returns the unit with that name.
func (l *Lab) Unit(name string) (Unit, bool) {
	for _, u := range l.Units {
		if u.Name == name {
			return u, true
		}
	}
	return Unit{}, false
}

// Primary and Secondary return the two units.
func (l *Lab) Primary() Unit   { return l.Units[0] }
func (l *Lab) Secondary() Unit { return l.Units[1] }

// Peer returns the other unit.
func (l *Lab) Peer(name string) Unit {
	if l.Units[0].Name == name {
		return l.Units[1]
	}
	return l.Units[0]
}

// NodeNames returns every node, units first, then switches, then hosts.
func (l *Lab) NodeNames() []string {
	var out []string
	for _, u := range l.Units {
		out = append(out, u.Name)
	}
	for _, s := range l.Switches {
		out = append(out, s.Name)
	}
	for _, h := range l.Hosts {
		out = append(out, h.Name)
	}
	return out
}

// Host returns the host with that name.
func (l *Lab) Host(name string) (Host, bool) {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// Namespace is the network namespace name of a node of this lab.
func (l *Lab) Namespace(node string) string { return NamespacePrefix + l.Name + "-" + node }

// NamespacePrefix starts the name of every namespace falab makes.
const NamespacePrefix = "falab-"
