package unit

import "github.com/falab/falab/api"

// Config is the unit process's config file (api.UnitConfig: the lab
// writes it, the unit reads it).
type Config = api.UnitConfig

// Ports on the failover and state links.
const (
	HelloPort = 7100 // UDP: failover hellos
	StatePort = 7101 // TCP: the replication stream
)
