package unit

import (
	"net/netip"
	"slices"

	"github.com/falab/falab/api"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/gtp"
	"github.com/falab/falab/replicate"
)

// The API serves package api's wire types, never the data plane's own
// structs: these functions are the one place where one becomes the other.

// convert maps a data-plane slice to its wire form; never nil, so that an
// empty table is [] and not null on the wire.
func convert[F, W any](in []F, f func(*F) W) []W {
	out := make([]W, len(in))
	for i := range in {
		out[i] = f(&in[i])
	}
	return out
}

func wireConn(c *firewall.ConnInfo) api.Conn {
	return api.Conn{Protocol: c.Protocol, InInterface: c.InInterface, OutInterface: c.OutInterface,
		OrigSrc: c.OrigSrc, OrigDst: c.OrigDst, ReplySrc: c.ReplySrc, ReplyDst: c.ReplyDst,
		State: c.State, HTTP: c.HTTP, Packets: c.Packets, Bytes: c.Bytes, Age: c.Age, Idle: c.Idle,
		NotReplicated: c.NotReplicated}
}

func wireXlate(x *firewall.XlateInfo) api.Xlate {
	return api.Xlate{Kind: x.Kind, Protocol: x.Protocol, RealInterface: x.RealInterface,
		MappedInterface: x.MappedInterface, Real: x.Real, Mapped: x.Mapped, Conns: x.Conns, Age: x.Age}
}

func wireARP(a *firewall.ARPInfo) api.ARPEntry {
	return api.ARPEntry{Interface: a.Interface, IP: a.IP, MAC: a.MAC, Age: a.Age}
}

func wireBridge(b *firewall.BridgeInfo) api.BridgeEntry {
	return api.BridgeEntry{MAC: b.MAC, Interface: b.Interface, Age: b.Age}
}

func wireRoute(r *firewall.RouteInfo) api.Route {
	return api.Route{Interface: r.Interface, Prefix: r.Prefix, NextHop: r.NextHop, Connected: r.Connected}
}

func wireInterface(i *firewall.InterfaceInfo) api.Interface {
	return api.Interface{Name: i.Name, SecurityLevel: i.SecurityLevel, Address: i.Address,
		StandbyAddr: i.StandbyAddr, MAC: i.MAC, Attached: i.Attached,
		RxPackets: i.RxPackets, RxBytes: i.RxBytes, TxPackets: i.TxPackets, TxBytes: i.TxBytes, Drops: i.Drops}
}

// Interfaces is `show interface`: the data plane's interfaces and their
// counters, with what the unit knows besides: each role's MAC (its
// config), its NIC's own MAC, failover's monitoring of the interface and
// the kernel's link state.
func (u *Unit) Interfaces() []api.Interface {
	u.statusMu.Lock()
	monUp := map[string]bool{}
	for _, m := range u.status.Interfaces {
		monUp[m.Name] = m.Up
	}
	u.statusMu.Unlock()
	out := convert(u.fw.InterfaceStats(), wireInterface)
	for i := range out {
		w := &out[i]
		for _, ic := range u.cfg.Firewall.Interfaces {
			if ic.Name == w.Name {
				w.ActiveMAC, w.StandbyMAC = ic.ActiveMAC.String(), ic.StandbyMAC.String()
			}
		}
		w.VirtualMAC = u.cfg.MACMode == "virtual"
		if cp := u.control[w.Name]; cp != nil {
			w.BurnedInMAC = cp.mac.String()
		}
		w.Monitored = slices.Contains(u.cfg.Monitored, w.Name)
		w.MonitorUp = w.Monitored && monUp[w.Name]
		if l, ok := kernelLinkOf(w.Name); ok {
			w.LinkKnown, w.AdminUp, w.Carrier = true, l.adminUp, l.carrier
			if w.BurnedInMAC == "" {
				w.BurnedInMAC = l.mac
			}
		}
	}
	return out
}

// replicationStats is the state stream's counters with tables named, not
// numbered.
func replicationStats(s replicate.Stats, name func(table uint8) string) api.ReplicationStats {
	w := api.ReplicationStats{
		Role: s.Role, Connected: s.Connected, InBulk: s.InBulk, Synced: s.Synced,
		Sessions: s.Sessions, Refused: s.Refused, SessionErrors: s.SessionErrors,
		AuthFailures: s.AuthFailures, SequenceErrors: s.SequenceErrors, BulkSyncs: s.BulkSyncs,
		Resyncs: s.Resyncs, Overflows: s.Overflows, DigestMarkers: s.DigestMarkers,
		DigestMismatches: s.DigestMismatches, ResyncsDeferred: s.ResyncsDeferred,
		DroppedNoSession: s.DroppedNoSession, LastError: s.LastError,
		QueueDepth: s.QueueDepth, QueueBytes: s.QueueBytes, QueueHigh: s.QueueHigh,
		RecordSeq: s.RecordSeq, AckedSeq: s.AckedSeq,
		FramesSent: s.FramesSent, FramesReceived: s.FramesReceived, BytesSent: s.BytesSent, BytesReceived: s.BytesReceived,
		LagSamples: s.LagSamples, LagP50: s.LagP50, LagP99: s.LagP99, LagMax: s.LagMax,
	}
	for _, t := range s.Tables {
		w.Tables = append(w.Tables, api.TableStats{Table: name(t.Table),
			Queued: t.Queued, Sent: t.Sent, Filtered: t.Filtered, Coalesced: t.Coalesced, Received: t.Received, Applied: t.Applied, Errors: t.Errors})
	}
	return w
}

// wirePDPContexts converts the GTP inspector's listing.
func wirePDPContexts(l gtp.Listing) api.PDPContexts {
	out := api.PDPContexts{InUse: l.InUse, MostUsed: l.MostUsed, Timeout: l.Timeout, Contexts: []api.PDPContext{}}
	a := func(b [4]byte) string { return netip.AddrFrom4(b).String() }
	for _, c := range l.Contexts {
		out.Contexts = append(out.Contexts, api.PDPContext{
			TID: c.TID.String(), IMSI: c.TID.IMSIString(), NSAPI: c.TID.NSAPI, Primary: c.Primary, MS: a(c.MS), APN: c.APN,
			SGSNControl: a(c.SGSNControl), SGSNData: a(c.SGSNData), GGSNControl: a(c.GGSNControl), GGSNData: a(c.GGSNData),
			SGSNControlTEID: c.SGSNControlTEID, SGSNDataTEID: c.SGSNDataTEID, GGSNControlTEID: c.GGSNControlTEID, GGSNDataTEID: c.GGSNDataTEID,
			Upstream: c.Upstream, Downstream: c.Downstream, SignalUpstream: c.SignalUpstream, SignalDownstream: c.SignalDownstream,
			Idle: c.Idle,
		})
	}
	return out
}
