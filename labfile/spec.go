package labfile

import (
	"time"
)

// Spec is a lab file as written: every field of the YAML schema, before any
// defaults or cross-checks. README.md documents each field; the yaml tags are
// the field names users write, and the parser rejects any other key.
type Spec struct {
	// Name names the lab; namespaces are called falab-<name>-<node>.
	Name string `yaml:"name"`
	// Description is one line shown by `falab labs`.
	Description string `yaml:"description"`
	// Mode is "routed" (default) or "transparent".
	Mode string `yaml:"mode"`
	// Offloads, when true, leaves TSO, GSO, GRO and TX checksum offload on
	// on every lab veth (default false: all off), and the units read and
	// write their data interfaces with virtio_net_hdrs (PACKET_VNET_HDR):
	// GSO super-frames up to 64 KiB travel through the firewall whole.
	Offloads bool `yaml:"offloads"`
	// Nodes maps a node name to the node.
	Nodes map[string]*NodeSpec `yaml:"nodes"`
	// Links join node interfaces to switches or to each other.
	Links []*LinkSpec `yaml:"links"`
	// Firewall is the configuration both units share, as on an ASA pair.
	Firewall *FirewallSpec `yaml:"firewall"`
	// Failover configures the pair's failover and state links.
	Failover *FailoverSpec `yaml:"failover"`
}

// Node kinds.
const (
	KindHost   = "host"
	KindSwitch = "switch"
	KindUnit   = "unit"
)

// NodeSpec is one node: a host, a switch or a firewall unit.
type NodeSpec struct {
	// Kind is host, switch or unit.
	Kind string `yaml:"kind"`
	// Role is primary or secondary; units only.
	Role string `yaml:"role"`
	// CPUs is how many CPUs a unit's process runs Go code on at once
	// (its GOMAXPROCS); units only. Default DefaultUnitCPUs.
	CPUs int `yaml:"cpus"`
	// Interfaces of a host, by name (eth0, ...). Units take their data
	// interfaces from the firewall section; switches make their ports.
	Interfaces map[string]*HostInterfaceSpec `yaml:"interfaces"`
	// Gateway is a host's default route.
	Gateway string `yaml:"gateway"`
	// Routes are a host's extra static routes.
	Routes []*HostRouteSpec `yaml:"routes"`
	// Daemons are programs falab runs in a host for as long as the lab is
	// up (a GGSN, an IKE daemon): started by `falab up` after the units,
	// killed by `falab down` by their recorded PID. Hosts only.
	Daemons []*DaemonSpec `yaml:"daemons"`
}

// DaemonSpec is one program a host runs while the lab is up. In command,
// env values and file contents, {dir} stands for the node's directory in
// the lab's state directory (/run/falab/LAB/NODE), {lab} for the lab's
// name and {node} for the host's; any other brace is left alone, so that
// config files with braces need no escaping.
type DaemonSpec struct {
	// Name names the daemon; unique within its host. Its output goes to
	// /run/falab/LAB/NODE-NAME.log.
	Name string `yaml:"name"`
	// Command is the argv; the program (Command[0]) must be on PATH, or a
	// path, when `falab up` runs.
	Command []string `yaml:"command"`
	// Package names the Debian package that ships the program, for the
	// error `falab up` gives when the program is missing.
	Package string `yaml:"package"`
	// Files are written into {dir} (mode 0600) before the daemon starts,
	// by relative name (subdirectories allowed, no "..").
	Files map[string]string `yaml:"files"`
	// Env is added to the daemon's environment, and to that of commands
	// run by `falab exec` and `falab shell` in the host, so that a control
	// tool finds the daemon's config as the daemon did.
	Env map[string]string `yaml:"env"`
	// PrivateRun gives the daemon a private mount namespace with an empty
	// tmpfs on /run (the host's /run is untouched; falab's run directory,
	// with {dir}, stays visible),
	// so two daemons of the same program on two hosts do not share pid
	// files and control sockets. The private_run daemons of one host share
	// one such namespace, and `falab exec` enters it too.
	PrivateRun bool `yaml:"private_run"`
	// Ready says when the daemon counts as started; without it, as soon
	// as it runs.
	Ready *DaemonReadySpec `yaml:"ready"`
}

// DaemonReadySpec says when a daemon is ready: once a line of its output
// matches Log, or after Wait; one of the two. If the daemon exits first,
// `falab up` fails with the tail of its log.
type DaemonReadySpec struct {
	// Log is a regular expression (Go syntax) matched against the output.
	Log string `yaml:"log"`
	// Timeout bounds the wait for Log (default 10s).
	Timeout *Duration `yaml:"timeout"`
	// Wait is a fixed delay after which a still-running daemon is ready.
	Wait *Duration `yaml:"wait"`
}

// HostInterfaceSpec is one kernel interface of a host.
type HostInterfaceSpec struct {
	// Address is IPv4 with prefix length, e.g. 198.18.1.11/24.
	Address string `yaml:"address"`
	// MAC is optional; falab derives a stable one otherwise.
	MAC string `yaml:"mac"`
	// MTU is optional (default 1500).
	MTU int `yaml:"mtu"`
}

// HostRouteSpec is a static route on a host.
type HostRouteSpec struct {
	To  string `yaml:"to"`
	Via string `yaml:"via"`
}

// LinkSpec is a cable: two endpoints, each "node:interface" or a bare
// switch name (the switch makes a port for it).
type LinkSpec struct {
	Endpoints []string `yaml:"endpoints"`
}

// FirewallSpec is the configuration of the firewall that both units run.
type FirewallSpec struct {
	Interfaces   []*FirewallInterfaceSpec `yaml:"interfaces"`
	Routes       []*FirewallRouteSpec     `yaml:"routes"`
	NAT          []*NATSpec               `yaml:"nat"`
	AccessLists  map[string][]*ACESpec    `yaml:"access_lists"`
	AccessGroups []*AccessGroupSpec       `yaml:"access_groups"`
	Timeouts     *TimeoutsSpec            `yaml:"timeouts"`
	Management   *ManagementInterfaceSpec `yaml:"management"`
	// Inspect turns on application inspection engines (validate_inspect.go).
	Inspect *InspectSpec `yaml:"inspect"`
	// Module is the security service module (ASA "ips inline
	// fail-open|fail-close" for a class); validate_module.go.
	Module *ModuleSpec `yaml:"module"`
	// AAA is cut-through proxy authentication (validate_uauth.go).
	AAA *AAASpec `yaml:"aaa"`
	// CryptoMaps are site-to-site IPsec peers (ASA crypto map, tunnel-group,
	// crypto ikev2 policy, ipsec-proposal; see fwconfig.CryptoMap).
	CryptoMaps []*CryptoMapSpec `yaml:"crypto_maps"`
}

// CryptoMapSpec is one crypto map entry with its peer's tunnel group.
type CryptoMapSpec struct {
	Name          string             `yaml:"name"`
	Seq           int                `yaml:"seq"`
	Interface     string             `yaml:"interface"`
	Peer          string             `yaml:"peer"`
	PreSharedKey  string             `yaml:"pre_shared_key"`
	IKEv2Policies []*IKEv2PolicySpec `yaml:"ikev2_policies"`
	IPsecProposal []string           `yaml:"ipsec_proposal"`
	MatchAddress  []*CryptoACESpec   `yaml:"match_address"`
}

// IKEv2PolicySpec is one "crypto ikev2 policy".
type IKEv2PolicySpec struct {
	Encryption string `yaml:"encryption"`
	Integrity  string `yaml:"integrity"`
	PRF        string `yaml:"prf"`
	Group      int    `yaml:"group"`
}

// CryptoACESpec is one "permit ip SOURCE DESTINATION" of a crypto ACL.
type CryptoACESpec struct {
	Source      string `yaml:"source"`
	Destination string `yaml:"destination"`
}

// FirewallInterfaceSpec is a data interface of the firewall (ASA nameif).
type FirewallInterfaceSpec struct {
	// Name is the nameif and the Linux interface name inside each unit.
	Name string `yaml:"name"`
	// SecurityLevel is 0 to 100; traffic from higher to lower passes.
	SecurityLevel *int `yaml:"security_level"`
	// Address is the active IP with prefix length (routed mode).
	Address string `yaml:"address"`
	// StandbyAddress is the standby unit's IP on this interface.
	StandbyAddress string `yaml:"standby_address"`
	// VirtualMAC is the active MAC in mac_mode virtual (derived if empty).
	VirtualMAC string `yaml:"virtual_mac"`
	// StandbyVirtualMAC is the standby MAC in mac_mode virtual.
	StandbyVirtualMAC string `yaml:"standby_virtual_mac"`
	// Monitor: a link loss here on the active fails the pair over.
	Monitor *bool `yaml:"monitor"`
}

// FirewallRouteSpec is a static route of the firewall.
type FirewallRouteSpec struct {
	Interface string `yaml:"interface"`
	To        string `yaml:"to"`
	Via       string `yaml:"via"`
}

// NATSpec is one NAT rule.
type NATSpec struct {
	// Type is dynamic-pat or static.
	Type string `yaml:"type"`
	// RealInterface and Real: where the real (untranslated) hosts are.
	RealInterface string `yaml:"real_interface"`
	Real          string `yaml:"real"`
	// MappedInterface and Mapped: the translated side; Mapped "interface"
	// (the default for dynamic-pat) means the interface's active address.
	MappedInterface string `yaml:"mapped_interface"`
	Mapped          string `yaml:"mapped"`
}

// ACESpec is one access-list entry.
type ACESpec struct {
	Action      string `yaml:"action"`
	Protocol    string `yaml:"protocol"`
	Source      string `yaml:"source"`
	Destination string `yaml:"destination"`
	// Port is the destination port: "80", "8000-8080" or empty for any.
	Port string `yaml:"port"`
}

// AccessGroupSpec binds an access list to an interface.
type AccessGroupSpec struct {
	AccessList string `yaml:"access_list"`
	Interface  string `yaml:"interface"`
	Direction  string `yaml:"direction"`
}

// TimeoutsSpec overrides the ASA-like idle timeouts.
type TimeoutsSpec struct {
	Conn       *Duration `yaml:"conn"`
	HalfClosed *Duration `yaml:"half_closed"`
	Embryonic  *Duration `yaml:"embryonic"`
	UDP        *Duration `yaml:"udp"`
	ICMP       *Duration `yaml:"icmp"`
	Xlate      *Duration `yaml:"xlate"`
	ARP        *Duration `yaml:"arp"`
	MACAddress *Duration `yaml:"mac_address"`
}

// ManagementInterfaceSpec is the per-pair management address used in
// transparent mode, where data interfaces carry no IP of the unit.
type ManagementInterfaceSpec struct {
	Address        string `yaml:"address"`
	StandbyAddress string `yaml:"standby_address"`
}

// FailoverSpec is the failover configuration of the pair.
type FailoverSpec struct {
	Link              *FailoverLinkSpec `yaml:"link"`
	StateLink         *FailoverLinkSpec `yaml:"state_link"`
	UnitPoll          *Duration         `yaml:"unit_poll"`
	UnitHold          *Duration         `yaml:"unit_hold"`
	InterfacePoll     *Duration         `yaml:"interface_poll"`
	InterfaceHold     *Duration         `yaml:"interface_hold"`
	MACMode           string            `yaml:"mac_mode"`
	HTTPReplication   *bool             `yaml:"http_replication"`
	Key               string            `yaml:"key"`
	NegotiationWindow *Duration         `yaml:"negotiation_window"`
	// Replicate turns an engine table's replication off (negative controls).
	Replicate *ReplicateSpec `yaml:"replicate"`
}

// FailoverLinkSpec is the failover or state link between the units.
type FailoverLinkSpec struct {
	// Interface is the Linux interface name in both units (default failover
	// for the failover link, state for the state link).
	Interface        string `yaml:"interface"`
	PrimaryAddress   string `yaml:"primary_address"`
	SecondaryAddress string `yaml:"secondary_address"`
}

// Duration is a time.Duration written as "100ms", "2m", "1h".
type Duration time.Duration

// D returns the duration, or def when d is nil.
func (d *Duration) D(def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return time.Duration(*d)
}
