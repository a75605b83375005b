package api

import (
	"context"
	"time"
)

// PDPContexts is a unit's GTP PDP context database, as `show service-policy
// inspect gtp pdp-context` lists it.
type PDPContexts struct {
	InUse    int           `json:"in_use"`
	MostUsed int           `json:"most_used"`
	Timeout  time.Duration `json:"timeout"` // the pdp-context idle timeout
	Contexts []PDPContext  `json:"contexts"`
}

// PDPContext is one committed PDP context: the replicated record (TID,
// addresses, TEIDs) and this unit's own counters and idle time.
type PDPContext struct {
	TID     string `json:"tid"` // as the ASA prints it: IMSI octets with the NSAPI in the last half-octet
	IMSI    string `json:"imsi"`
	NSAPI   uint8  `json:"nsapi"`
	Primary bool   `json:"primary"`
	MS      string `json:"ms"`
	APN     string `json:"apn"`

	SGSNControl     string `json:"sgsn_control"`
	SGSNData        string `json:"sgsn_data"`
	GGSNControl     string `json:"ggsn_control"`
	GGSNData        string `json:"ggsn_data"`
	SGSNControlTEID uint32 `json:"sgsn_control_teid"`
	SGSNDataTEID    uint32 `json:"sgsn_data_teid"`
	GGSNControlTEID uint32 `json:"ggsn_control_teid"`
	GGSNDataTEID    uint32 `json:"ggsn_data_teid"`

	Upstream         uint64        `json:"upstream_tpdu"`
	Downstream       uint64        `json:"downstream_tpdu"`
	SignalUpstream   uint64        `json:"upstream_signal"`
	SignalDownstream uint64        `json:"downstream_signal"`
	Idle             time.Duration `json:"idle"`
}

// PDPContexts returns the unit's GTP PDP contexts; an error if the unit
// does not inspect GTP.
func (c *Client) PDPContexts(ctx context.Context) (PDPContexts, error) {
	var p PDPContexts
	return p, c.do(ctx, "GET", "/v1/gtp/pdp-contexts", nil, &p)
}
