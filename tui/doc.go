// Package tui is falab's live terminal UI over a running lab: both units'
// roles and states, their tables side by side (the active's entries and
// the standby's replicated copy, marked per row), the hosts' ARP caches,
// the merged timeline of both units and the lab, and keys that fail over,
// kill, freeze or restart a unit and cut links. A line of the header says
// what the wire says: whether exactly one unit answers each host's ARP for
// its gateway (checked every 2s, and at once after a fault or role
// change), which the units' own reports cannot show.
// It must not import the data plane or the unit process (firewall, afpacket,
// failover, replicate, unit): it reads the units only through the unit API's
// client and types.
//
// It is a Bubble Tea program. Everything it reads or does goes through a
// [Source] (the real one is [LabSource]); every read runs in a tea.Cmd and
// comes back as a message of its own type, so Update never blocks and a
// frozen unit never freezes the screen. Only what is on screen is read: a
// table with more than a few thousand entries is read one page at a time.
package tui
