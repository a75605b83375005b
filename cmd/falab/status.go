package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/falab/falab/lab"
)

// labStatus is `falab status` of one lab: lab.Status with each unit's
// failover state as its API gave it (its Units shadow lab.Status's).
type labStatus struct {
	*lab.Status
	Units []unitStatus `json:"units"`
}

// unitStatus is a unit process and, when its API answered, its failover
// state.
type unitStatus struct {
	lab.UnitStatus
	Failover *unitFailover `json:"failover,omitempty"`
}

// unitFailover is the part of a unit's `show failover` that status shows.
type unitFailover struct {
	Role   string `json:"role"`
	State  string `json:"state"`
	Active bool   `json:"active"`
	Term   uint64 `json:"term"`
}

// withFailover asks each live unit of s for its failover state, all at
// once and within statusWait (a frozen unit does not answer).
func withFailover(ctx context.Context, s *lab.Status) labStatus {
	out := labStatus{Status: s, Units: make([]unitStatus, len(s.Units))}
	var names []string
	for i, u := range s.Units {
		out.Units[i].UnitStatus = u
		names = append(names, u.Name)
	}
	if len(names) == 0 {
		return out
	}
	sts, _ := unitStatuses(ctx, s.Name, names)
	for i, st := range sts {
		if st.PID != 0 {
			out.Units[i].Failover = &unitFailover{Role: st.Role, State: st.State, Active: st.Active, Term: st.Term}
		}
	}
	return out
}

// printStatus writes one lab's nodes: a node whose namespace is there is
// "up"; a unit says its process and its failover state.
func printStatus(w io.Writer, s labStatus) {
	fmt.Fprintf(w, "lab %s  (%s, %s, up %v)\n", s.Name, s.Source, s.Phase, time.Since(s.CreatedAt).Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tKIND\tNAMESPACE\tSTATE")
	for _, n := range s.Nodes {
		state := "up"
		if !n.Present {
			state = "namespace MISSING"
		}
		for _, u := range s.Units {
			if u.Name == n.Name {
				state = unitState(u, n.Present)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.Name, n.Kind, n.Namespace, state+n.DaemonSummary())
	}
	tw.Flush()
	for _, p := range s.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
}

// unitState is a unit's STATE cell, e.g. "primary, pid 812, Active (term 2)".
func unitState(u unitStatus, present bool) string {
	s := u.Role
	if !present {
		s = "namespace MISSING, " + s
	}
	switch {
	case u.PID == 0:
		return s + ", unit process not started"
	case !u.Alive:
		return s + fmt.Sprintf(", pid %d DEAD", u.PID)
	case u.Failover == nil:
		return s + fmt.Sprintf(", pid %d, not answering", u.PID)
	default:
		return s + fmt.Sprintf(", pid %d, %s (term %d)", u.PID, u.Failover.State, u.Failover.Term)
	}
}
