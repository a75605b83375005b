package traffic

import (
	"errors"
	"syscall"
)

// isConnRefused reports an ICMP port-unreachable surfacing on a connected
// UDP socket.
func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
