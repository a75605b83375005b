package unit

import (
	"net/netip"
	"strings"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/ctiqbe"
	"github.com/falab/falab/sip"
)

// voiceView is the unit's voice inspection state in wire form.
func (u *Unit) voiceView(now time.Time) api.Voice {
	var v api.Voice
	if in := u.SIP(); in != nil {
		sessions := in.Sessions(now)
		lens := in.Len()
		s := &api.SIPInspection{Replicated: u.SIPReplicated(), Sessions: []api.SIPSession{},
			Transactions: lens[sip.TableTransaction-1], Pinholes: lens[sip.TablePinhole-1]}
		for _, se := range sessions {
			s.Sessions = append(s.Sessions, api.SIPSession{CallID: se.CallID, State: se.State.ASAState(), Idle: se.Idle})
		}
		var b strings.Builder
		_ = sip.WriteSIP(&b, sessions)
		s.Show = b.String()
		b.Reset()
		_ = sip.WriteServicePolicy(&b, in.Stats(), lens)
		s.ServicePolicy = b.String()
		v.SIP = s
	}
	if e := u.CTIQBE(); e != nil {
		c := &api.CTIQBEInspection{Model: ctiqbe.ModelLabel, Sessions: []api.CTIQBESession{}, NoSession: e.Counters().NoSession, Show: e.Show()}
		for _, s := range e.Sessions() {
			c.Sessions = append(c.Sessions, api.CTIQBESession{
				Phone:   netip.AddrPortFrom(netip.AddrFrom4(s.Conn.Phone), s.Conn.PhonePort).String(),
				Manager: netip.AddrPortFrom(netip.AddrFrom4(s.Conn.Manager), s.Conn.ManagerPort).String(),
				Device:  s.Device, State: [...]string{"registering", "registered", "in call"}[min(max(s.State, 0), 2)], Calls: len(s.Calls),
			})
		}
		v.CTIQBE = c
	}
	return v
}
