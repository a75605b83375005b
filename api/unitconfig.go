package api

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/falab/falab/fwconfig"
)

// UnitConfig is everything one unit process needs, written by `falab up`
// as JSON into the lab's state directory and read by `falab unit
// --config`. The unit knows nothing of lab files: package lab resolves them
// into this.
type UnitConfig struct {
	Lab  string `json:"lab"`
	Name string `json:"name"` // e.g. fw-a
	Peer string `json:"peer"` // e.g. fw-b
	// Role is "primary" or "secondary".
	Role string `json:"role"`

	Firewall fwconfig.Config `json:"firewall"`
	// Monitored lists the data interfaces whose link loss fails the pair over.
	Monitored []string `json:"monitored"`

	// FailoverInterface is the failover link's interface in the unit's
	// namespace; LocalAddr and PeerAddr are the two ends' addresses on it.
	FailoverInterface string     `json:"failover_interface"`
	LocalAddr         netip.Addr `json:"local_addr"`
	PeerAddr          netip.Addr `json:"peer_addr"`
	// StateInterface, StateLocalAddr and StatePeerAddr name a separate state
	// link; empty means state goes over the failover link.
	StateInterface string     `json:"state_interface,omitempty"`
	StateLocalAddr netip.Addr `json:"state_local_addr,omitzero"`
	StatePeerAddr  netip.Addr `json:"state_peer_addr,omitzero"`

	UnitPoll          time.Duration `json:"unit_poll"`
	UnitHold          time.Duration `json:"unit_hold"`
	InterfacePoll     time.Duration `json:"interface_poll"`
	InterfaceHold     time.Duration `json:"interface_hold"`
	NegotiationWindow time.Duration `json:"negotiation_window"`
	// MACMode is "virtual" or "burned-in" (already applied to the
	// firewall config's MACs; kept for display).
	MACMode         string `json:"mac_mode"`
	HTTPReplication bool   `json:"http_replication"`
	// NoReplicate names engine tables the lab does not replicate
	// (failover.replicate: a negative control), e.g. gtp-pdp.
	NoReplicate []string `json:"no_replicate,omitempty"`
	// NoIPsecReplication keeps the IKE and IPsec SA table off the state
	// link (a negative control).
	NoIPsecReplication bool `json:"no_ipsec_replication,omitempty"`
	// BoxTCPPorts are the TCP ports the unit's own stack listens on (the
	// management policy of the box admits them; ICMP echo and UDP 500/4500
	// always).
	BoxTCPPorts []uint16 `json:"box_tcp_ports,omitempty"`
	// Offloads: the lab leaves offloads on, so the unit opens its data
	// interfaces with virtio_net_hdrs and forwards GSO super-frames whole.
	Offloads bool `json:"offloads,omitempty"`
	// CPUs is the unit process's GOMAXPROCS (lab file: the unit node's
	// cpus); 0 leaves Go's default (every CPU).
	CPUs int `json:"cpus,omitempty"`
	// KeyFile holds the failover key (mode 0600).
	KeyFile string `json:"key_file"`

	// Socket is the unit's API socket; Log its log file.
	Socket string `json:"socket"`
	Log    string `json:"log"`
}

// ReadUnitConfig reads a unit config file.
func ReadUnitConfig(path string) (*UnitConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c UnitConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Name == "" || c.Socket == "" {
		return nil, fmt.Errorf("%s: missing name or socket", path)
	}
	return &c, nil
}

// WriteUnitConfig writes a unit config file (mode 0600: it names the key).
func WriteUnitConfig(path string, c *UnitConfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
