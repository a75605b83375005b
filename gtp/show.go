package gtp

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"
)

// ContextInfo is one committed context as listed: the replicated record
// plus this unit's counters.
type ContextInfo struct {
	Record
	Upstream, Downstream             uint64        // G-PDUs passed towards the GGSN and towards the SGSN
	SignalUpstream, SignalDownstream uint64        // signalling messages passed from the SGSN and from the GGSN
	Idle                             time.Duration // since the last activity noticed
}

// Listing is what "show service-policy inspect gtp pdp-context" prints.
type Listing struct {
	InUse, MostUsed int
	Timeout         time.Duration // the pdp-context timeout
	Contexts        []ContextInfo // sorted by TID
}

// Contexts returns the committed contexts at now, sorted by TID.
func (in *Inspector) Contexts(now time.Time) []ContextInfo {
	return in.Listing(now).Contexts
}

// Listing returns the database's listing at now.
func (in *Inspector) Listing(now time.Time) Listing {
	t := now.UnixNano()
	in.mu.RLock()
	defer in.mu.RUnlock()
	l := Listing{InUse: len(in.contexts), MostUsed: in.mostUsed, Timeout: in.cfg.PDPContextTimeout,
		Contexts: make([]ContextInfo, 0, len(in.contexts))}
	for _, c := range in.contexts {
		ci := ContextInfo{Record: c.rec, Upstream: c.up.Load(), Downstream: c.down.Load(),
			SignalUpstream: c.signalUp, SignalDownstream: c.signalDown}
		if c.lastSeen != 0 && t > c.lastSeen {
			ci.Idle = time.Duration(t - c.lastSeen)
		}
		l.Contexts = append(l.Contexts, ci)
	}
	slices.SortFunc(l.Contexts, func(a, b ContextInfo) int {
		if c := slices.Compare(a.TID.IMSI[:], b.TID.IMSI[:]); c != 0 {
			return c
		}
		return int(a.TID.NSAPI) - int(b.TID.NSAPI)
	})
	return l
}

// hms formats a duration as the ASA does: "0:30:00".
func hms(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

func addr(a [4]byte) string {
	if a == [4]byte{} {
		return "0.0.0.0"
	}
	return netip.AddrFrom4(a).String()
}

// WritePDPContexts prints l in the format of the ASA's "show
// service-policy inspect gtp pdp-context [detail]" (sample output in the
// Cisco ASA 5500 Series Configuration Guide using the CLI, "GTP
// Inspection"): a summary line, a header and one line per context; detail
// adds the per-context block. seq_tpdu_*, the *_flow handles and
// RAupdate_flow are ASA internals printed as 0; falab adds one line with
// the G-PDUs counted in each direction.
func WritePDPContexts(w io.Writer, l Listing, detail bool) error {
	ew := &errWriter{w: w}
	ew.printf("%d in use, %d most used, timeout %s\n", l.InUse, l.MostUsed, hms(l.Timeout))
	if len(l.Contexts) == 0 {
		return ew.err
	}
	ew.printf("%-7s %-16s %-15s %-15s %-8s %s\n", "Version", "TID", "MS Addr", "SGSN Addr", "Idle", "APN")
	for _, c := range l.Contexts {
		ew.printf("%-7s %-16s %-15s %-15s %-8s %s\n", "v1", c.TID, addr(c.MS), addr(c.SGSNControl), hms(c.Idle), c.APN)
		if detail {
			writeDetail(ew, c)
		}
	}
	return ew.err
}

func writeDetail(ew *errWriter, c ContextInfo) {
	primary := "N"
	if c.Primary {
		primary = "Y"
	}
	ew.printf("  user_name (IMSI): %s MS address: %s\n", c.TID.IMSIString(), addr(c.MS))
	ew.printf("  primary pdp: %s nsapi: %d\n", primary, c.TID.NSAPI)
	ew.printf("  sgsn_addr_signal: %s sgsn_addr_data: %s\n", addr(c.SGSNControl), addr(c.SGSNData))
	ew.printf("  ggsn_addr_signal: %s ggsn_addr_data: %s\n", addr(c.GGSNControl), addr(c.GGSNData))
	ew.printf("  sgsn control teid: 0x%08x sgsn data teid: 0x%08x\n", c.SGSNControlTEID, c.SGSNDataTEID)
	ew.printf("  ggsn control teid: 0x%08x ggsn data teid: 0x%08x\n", c.GGSNControlTEID, c.GGSNDataTEID)
	ew.printf("  seq_tpdu_up: 0 seq_tpdu_down: 0\n")
	ew.printf("  signal_sequence: 0\n")
	ew.printf("  upstream_signal_flow: 0 upstream_data_flow: 0\n")
	ew.printf("  downstream_signal_flow: 0 downstream_data_flow: 0\n")
	ew.printf("  RAupdate_flow: 0\n")
	ew.printf("  upstream_tpdu: %d downstream_tpdu: %d upstream_signal: %d downstream_signal: %d\n",
		c.Upstream, c.Downstream, c.SignalUpstream, c.SignalDownstream)
}

// errWriter keeps the first write error so that the formatter reads
// straight.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
