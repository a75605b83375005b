package unit

import (
	"strings"
	"sync"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/firewall"
)

// Counter is implemented by an EngineTable that can count its entries, for
// the replication view; a table that does not shows -1 there.
type Counter interface {
	Len() int
}

// localTable is a table the unit keeps to itself (AddLocalTable).
type localTable struct {
	name, reason string
	count        func() int
}

// AddLocalTable lists a table that is never replicated in the replication
// view (`show failover`, the TUI), with its live count on this unit and
// why it is local: an engine whose state the ASA does not replicate
// (CTIQBE sessions, the uauth table, the service module's flows) registers
// one here instead of an EngineTable. count is called for each status and
// must be cheap and safe for concurrent use. Call before Run.
func (u *Unit) AddLocalTable(name, reason string, count func() int) {
	u.locals = append(u.locals, localTable{name: name, reason: reason, count: count})
}

// viewCountEvery bounds how often the unreplicated connections are
// counted: counting walks the connection table, and statuses are asked
// for often (the chaos sampler every 10 ms, the TUI several times a
// second).
const viewCountEvery = 500 * time.Millisecond

// cached is a value recomputed at most every viewCountEvery.
type cached[T any] struct {
	mu  sync.Mutex
	at  time.Time
	val T
}

func (c *cached[T]) get(compute func() T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.at) >= viewCountEvery {
		c.val, c.at = compute(), now
	}
	return c.val
}

// Why the firewall's own local tables are local.
const (
	reasonRoutes = "each unit builds its own routes from the config"
	reasonHTTP   = "HTTP replication is off (failover replication http)"
)

// replicationView lists the replicated tables with their entries here, then
// the tables this unit keeps to itself. A connection kept off the link by
// policy counts under "http" in the local group, not under "conn", so the
// conn row is what the standby should hold.
func (u *Unit) replicationView() ([]api.StatefulTable, []api.LocalTable) {
	unreplicated := 0
	if !u.cfg.HTTPReplication {
		unreplicated = u.unreplicated.get(u.fw.UnreplicatedConnCount)
	}
	var stateful []api.StatefulTable
	for _, id := range u.tables {
		n := -1
		switch firewall.Table(id) {
		case firewall.TableConn:
			n = u.fw.ConnCount() - unreplicated
		case firewall.TableXlate:
			n = u.fw.XlateCount()
		case firewall.TableARP:
			n = len(u.fw.ARPEntries())
		case firewall.TableBridge:
			n = u.fw.BridgeCount()
		}
		if e, ok := u.engine(id); ok {
			n = -1
			if c, ok := e.(Counter); ok {
				n = c.Len()
			}
		}
		stateful = append(stateful, api.StatefulTable{Table: strings.ToLower(u.tableName(id)), Entries: n})
	}
	local := []api.LocalTable{{Table: "route", Entries: len(u.fw.RoutesTable()), Reason: reasonRoutes}}
	if !u.cfg.HTTPReplication {
		local = append(local, api.LocalTable{Table: "http", Entries: unreplicated, Reason: reasonHTTP})
	}
	for _, l := range u.locals {
		local = append(local, api.LocalTable{Table: l.name, Entries: l.count(), Reason: l.reason})
	}
	return stateful, local
}
