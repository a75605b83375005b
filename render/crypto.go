package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/falab/falab/api"
)

// ShowCryptoIKEv2SA writes `show crypto ikev2 sa` as an ASA lays it out:
// per IKE SA its tunnel line, algorithms, and child SAs with selectors and
// SPIs; plus the message ID the next request must carry, which the
// standby's copy must agree on for a takeover to go unnoticed.
func ShowCryptoIKEv2SA(w io.Writer, c api.Crypto) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: IKEv2 SAs (%s copy%s):\n\n", c.Unit, map[bool]string{true: "active", false: "standby's replicated"}[c.Active], notReplicated(c))
	for i, sa := range c.IKE {
		fmt.Fprintf(&b, "Session-id:%d, Status:UP-%s, IKE count:1, CHILD count:%d\n\n", i+1, map[bool]string{true: "ACTIVE", false: "STANDBY"}[c.Active], len(sa.Children))
		fmt.Fprintf(&b, "Tunnel-id Local                 Remote                Status         Role\n")
		fmt.Fprintf(&b, "%9d %-21s %-21s READY          RESPONDER\n", i+1, slashPort(sa.Local), slashPort(sa.Remote))
		fmt.Fprintf(&b, "      Encr/Hash/DH: %s, Auth sign: PSK, Auth verify: PSK\n", sa.Suite)
		fmt.Fprintf(&b, "      SPI i/r: %s/%s, peer id %s, NAT-T %v, next message id %d\n", sa.SPIi, sa.SPIr, sa.PeerID, sa.NATPeer, sa.NextMessageID)
		for _, ch := range sa.Children {
			fmt.Fprintf(&b, "Child sa: local selector  %s\n", strings.Join(ch.LocalTS, ", "))
			fmt.Fprintf(&b, "          remote selector %s\n", strings.Join(ch.RemoteTS, ", "))
			fmt.Fprintf(&b, "          ESP spi in/out: 0x%s/0x%s, %s\n", ch.InSPI, ch.OutSPI, ch.Suite)
		}
		b.WriteString("\n")
	}
	if len(c.IKE) == 0 {
		b.WriteString("There are no IKEv2 SAs\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ShowCryptoIPsecSA writes `show crypto ipsec sa`: per child SA in the
// data plane its endpoints and idents, the packet counters, the replay
// window and the outbound sequence number with its lease.
func ShowCryptoIPsecSA(w io.Writer, c api.Crypto) error {
	var b strings.Builder
	for _, s := range c.IPsec {
		fmt.Fprintf(&b, "interface: %s\n", s.Interface)
		fmt.Fprintf(&b, "    local addr: %s\n\n", s.Local)
		fmt.Fprintf(&b, "      local ident (addr range): %s\n", strings.Join(s.LocalTS, ", "))
		fmt.Fprintf(&b, "      remote ident (addr range): %s\n", strings.Join(s.RemoteTS, ", "))
		fmt.Fprintf(&b, "      current_peer: %s\n\n", s.Peer.Addr())
		fmt.Fprintf(&b, "      #pkts encaps: %d, #pkts encrypt: %d, #bytes: %d\n", s.Encaps, s.Encaps, s.EncapBytes)
		fmt.Fprintf(&b, "      #pkts decaps: %d, #pkts decrypt: %d, #pkts verify: %d, #bytes: %d\n", s.Decaps, s.Decaps, s.Decaps, s.DecapBytes)
		fmt.Fprintf(&b, "      #pkts replay failed: %d, #pkts invalid (auth): %d, #pkts selector mismatch: %d, #send errors (lease): %d\n",
			s.ReplayDrops, s.AuthDrops, s.PolicyDrops, s.LeaseDrops)
		fmt.Fprintf(&b, "      local crypto endpt.: %s/4500, remote crypto endpt.: %s\n", s.Local, slashPort(s.Peer))
		fmt.Fprintf(&b, "      current outbound spi: %s\n      current inbound spi : %s\n\n", strings.ToUpper(s.OutSPI), strings.ToUpper(s.InSPI))
		fmt.Fprintf(&b, "    inbound esp sas:\n      spi: 0x%s\n         transform: esp-aes-gcm, in use settings ={L2L, Tunnel, NAT-T-Encaps, IKEv2, }\n", strings.ToUpper(s.InSPI))
		fmt.Fprintf(&b, "         anti replay window: %d, highest sequence number accepted: %d\n", s.ReplayWindow, s.ReplayTop)
		fmt.Fprintf(&b, "    outbound esp sas:\n      spi: 0x%s\n         next sequence number: %d, leased up to: %d\n\n", strings.ToUpper(s.OutSPI), s.NextSeq, s.LeaseLimit)
	}
	if len(c.IPsec) == 0 {
		fmt.Fprintf(&b, "%s: there are no ipsec sas in the data plane", c.Unit)
		if !c.Active && len(c.IKE) > 0 {
			fmt.Fprintf(&b, " (a standby installs its %d replicated IKE SAs' children at takeover)", len(c.IKE))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func notReplicated(c api.Crypto) string {
	if c.Replicated {
		return ""
	}
	return "; replication off"
}
