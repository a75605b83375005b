package replicate_test

import (
	"crypto/rand"
	"log/slog"
	"net"
	"time"

	"github.com/falab/falab/replicate"
)

// tables is what the unit's adapter would be: the firewall's tables behind
// its change lock. Here it only shows the shape.
type tables struct{}

func (tables) Snapshot(table uint8, cursor uint64, emit func([]byte)) (uint64, bool, error) {
	// lock; for each entry in bucket cursor: emit(encode(entry)); unlock
	return cursor + 1, true, nil
}

func (tables) MarkDigests(mark func(map[uint8]uint64)) {
	// lock; mark(current digests); unlock
	mark(map[uint8]uint64{1: 0})
}

// Example shows the active side's wiring: one Sender for the unit's life,
// the firewall's change hook calling Emit, a periodic digest marker, and a
// loop accepting the standby's connections on the failover link.
func Example() {
	var key replicate.Key // in a lab: api.ReadKeyFile(the unit config's KeyFile)
	rand.Read(key[:])
	src := tables{}
	s, err := replicate.NewSender(replicate.SenderConfig{
		Key:    key,
		Source: src,
		Tables: []uint8{1, 2, 3}, // conns, xlates, ARP
		Logger: slog.Default(),
		OnEvent: func(e replicate.Event) {
			// feed the unit's event log / TUI
		},
	})
	if err != nil {
		return
	}
	defer s.Close()
	// firewall.OnChange(func(table uint8, op replicate.Op, rec []byte) { s.Emit(table, op, rec) })
	go func() {
		for range time.Tick(time.Second) {
			src.MarkDigests(s.MarkDigest)
		}
	}()
	ln, err := net.Listen("tcp", "198.18.255.1:0") // the failover link's address
	if err != nil {
		return
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go s.Serve(c) // a newer connection replaces the older session
	}
}
