package api

import (
	"net/netip"
	"time"
)

// Page is one page of a large table.
type Page[T any] struct {
	Total   int `json:"total"`
	Offset  int `json:"offset"`
	Entries []T `json:"entries"`
}

// MaxPage bounds one page, so that a table of a million entries is served
// in pages and never in one answer.
const MaxPage = 10000

// Conn is one connection, as `show conn` lists it. Addresses are
// address:port strings (ICMP shows the identifier as the port).
type Conn struct {
	Protocol     string        `json:"protocol"`
	InInterface  string        `json:"in_interface"`
	OutInterface string        `json:"out_interface"`
	OrigSrc      string        `json:"orig_src"`
	OrigDst      string        `json:"orig_dst"`
	ReplySrc     string        `json:"reply_src"`
	ReplyDst     string        `json:"reply_dst"`
	State        string        `json:"state"`
	HTTP         bool          `json:"http"`
	Packets      uint64        `json:"packets"`
	Bytes        uint64        `json:"bytes"`
	Age          time.Duration `json:"age_ns"`
	Idle         time.Duration `json:"idle_ns"`

	// NotReplicated: policy keeps this connection off the state link (an
	// HTTP connection while HTTP replication is off). The standby has no
	// copy by design, which is not an error.
	NotReplicated bool `json:"not_replicated,omitempty"`
}

// Xlate is one address translation, as `show xlate` lists it.
type Xlate struct {
	Kind            string         `json:"kind"`
	Protocol        string         `json:"protocol,omitempty"`
	RealInterface   string         `json:"real_interface"`
	MappedInterface string         `json:"mapped_interface"`
	Real            netip.AddrPort `json:"real"`
	Mapped          netip.AddrPort `json:"mapped"`
	Conns           int            `json:"conns"`
	Age             time.Duration  `json:"age_ns"`
}

// ARPEntry is one entry of the unit's (replicated) ARP table.
type ARPEntry struct {
	Interface string        `json:"interface"`
	IP        netip.Addr    `json:"ip"`
	MAC       string        `json:"mac"`
	Age       time.Duration `json:"age_ns"`
}

// BridgeEntry is one station of the transparent mode's bridge (MAC
// address) table.
type BridgeEntry struct {
	MAC       string        `json:"mac"`
	Interface string        `json:"interface"`
	Age       time.Duration `json:"age_ns"` // since the last frame from the station
}

// Route is one entry of the unit's routing table.
type Route struct {
	Interface string       `json:"interface"`
	Prefix    netip.Prefix `json:"prefix"`
	NextHop   netip.Addr   `json:"next_hop"` // zero for connected routes
	Connected bool         `json:"connected"`
}

// Interface is one data interface with its counters.
type Interface struct {
	Name          string       `json:"name"`
	SecurityLevel int          `json:"security_level"`
	Address       netip.Prefix `json:"address"`
	StandbyAddr   netip.Addr   `json:"standby_address"`
	MAC           string       `json:"mac"`
	Attached      bool         `json:"attached"`
	RxPackets     uint64       `json:"rx_packets"`
	RxBytes       uint64       `json:"rx_bytes"`
	TxPackets     uint64       `json:"tx_packets"`
	TxBytes       uint64       `json:"tx_bytes"`
	Drops         uint64       `json:"drops"`

	// What the unit knows of the interface beyond its data plane (empty
	// from a unit that predates them).
	//
	// ActiveMAC and StandbyMAC are the MACs the interface answers with
	// while its unit is active and while it is standby (MAC is the one in
	// use now): under mac_mode virtual they are the pair's virtual MACs,
	// which move with the role (VirtualMAC says so); under burned-in both
	// are the unit's own. BurnedInMAC is the NIC's own MAC ("" unknown).
	ActiveMAC   string `json:"active_mac,omitempty"`
	StandbyMAC  string `json:"standby_mac,omitempty"`
	VirtualMAC  bool   `json:"virtual_mac,omitempty"`
	BurnedInMAC string `json:"burned_in_mac,omitempty"`
	// LinkKnown says AdminUp and Carrier were read from the kernel: the
	// interface is administratively up, and it has carrier.
	LinkKnown bool `json:"link_known,omitempty"`
	AdminUp   bool `json:"admin_up,omitempty"`
	Carrier   bool `json:"carrier,omitempty"`
	// Monitored: failover watches the interface (monitor-interface), and
	// MonitorUp is its state there: Normal (true) or Link Down.
	Monitored bool `json:"monitored,omitempty"`
	MonitorUp bool `json:"monitor_up,omitempty"`
}

// Drops counts dropped frames by reason, under `show asp-drop` names; only
// non-zero counters are present.
type Drops map[string]uint64
