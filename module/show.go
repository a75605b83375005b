package module

import (
	"fmt"
	"io"
)

// Stats are the module's counters, summed over its shards.
type Stats struct {
	Up                 bool
	Flows, MostFlows   int
	Buffered           int    // out-of-order bytes held now
	Packets, Bytes     uint64 // segments seen (while up), bytes inspected
	Detected           uint64 // flows in which a signature was seen
	DetectedDrops      uint64 // segments dropped because their flow was detected
	UninspectedFlows   uint64 // flows met mid-stream, without state
	UninspectedPackets uint64 // their segments, and every segment while down
	FailCloseDrops     uint64 // uninspected segments dropped by fail-close
	Retransmits        uint64 // segments (partly) before the next expected byte
	OutOfOrder         uint64 // segments held for a gap
	BufferFullDrops    uint64 // out-of-order segments beyond the window or budget
	Evicted, Expired   uint64 // flows removed to make room, and by timeout
	Closed             uint64 // flows closed by RST or both FINs
	DownPackets        uint64 // segments met while down (also in UninspectedPackets)
	SignatureCount     int
	FailMode           FailMode
	DetectedSignatures map[string]uint64 // flows detected per signature name
}

// Stats returns the module's counters.
func (m *Module) Stats() Stats {
	s := Stats{Up: m.Up(), Flows: int(m.flows.Load()), MostFlows: int(m.mostFlows.Load()),
		DownPackets: m.downPkts.Load(), SignatureCount: len(m.cfg.Signatures), FailMode: m.cfg.FailMode,
		DetectedSignatures: map[string]uint64{}}
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		c := sh.st
		s.Buffered += sh.buffered
		for _, f := range sh.flows {
			if f.state == detected {
				s.DetectedSignatures[m.cfg.Signatures[f.sig].Name]++
			}
		}
		sh.mu.Unlock()
		s.Packets += c.Packets
		s.Bytes += c.Bytes
		s.Detected += c.Detected
		s.DetectedDrops += c.DetectedDrops
		s.UninspectedFlows += c.UninspectedFlows
		s.UninspectedPackets += c.UninspectedPackets
		s.FailCloseDrops += c.FailCloseDrops
		s.Retransmits += c.Retransmits
		s.OutOfOrder += c.OutOfOrder
		s.BufferFullDrops += c.BufferFullDrops
		s.Evicted += c.Evicted
		s.Expired += c.Expired
		s.Closed += c.Closed
	}
	s.UninspectedPackets += s.DownPackets
	if m.cfg.FailMode == FailClose {
		s.FailCloseDrops += s.DownPackets
	}
	return s
}

// Status is the module's "show module" status: "Up" or "Down".
func (m *Module) Status() string {
	if m.Up() {
		return "Up"
	}
	return "Down"
}

// Unit describes the unit the module sits in, for "show module".
type Unit struct {
	Name    string // the unit, e.g. "fw-a"
	Model   string // e.g. "falab"
	Version string // the unit's software version
}

// Show writes "show module" as the ASA prints it (slot 1 the unit, then
// the module's slot), followed by the module's counters on this unit.
func (m *Module) Show(w io.Writer, u Unit) error {
	slot := m.cfg.Slot
	s := m.Stats()
	_, err := fmt.Fprintf(w, `Mod  Card Type                                    Model              Serial No.
---- -------------------------------------------- ------------------ -----------
%4s %-44s %-18s %s
%4s %-44s %-18s %s

Mod  SSM Application Name           Status           SSM Application Version
---- ------------------------------ ---------------- --------------------------
%4s %-30s %-16s %s

Mod  Status             Data Plane Status     Compatibility
---- ------------------ --------------------- -------------
%4s %-18s %s
%4s %-18s %s

Module %s on %s: %s, %d signatures
  flows %d (most %d), out-of-order bytes held %d
  packets %d, bytes inspected %d
  detected flows %d, drops %d
  uninspected flows %d, packets %d, fail-close drops %d
  retransmits %d, out of order %d, reassembly-full drops %d
  flows evicted %d, expired %d, closed %d
`,
		"1", u.Model+" firewall unit "+u.Name, u.Model, u.Name,
		slot, "falab Inspection Module (signature engine)", u.Model+"-"+slot, u.Name+"-"+slot,
		slot, "falab "+slot, m.Status(), u.Version,
		"1", "Up Sys", "Not Applicable",
		slot, m.Status(), m.Status(),
		slot, u.Name, s.FailMode, s.SignatureCount,
		s.Flows, s.MostFlows, s.Buffered,
		s.Packets, s.Bytes,
		s.Detected, s.DetectedDrops,
		s.UninspectedFlows, s.UninspectedPackets, s.FailCloseDrops,
		s.Retransmits, s.OutOfOrder, s.BufferFullDrops,
		s.Evicted, s.Expired, s.Closed)
	return err
}
