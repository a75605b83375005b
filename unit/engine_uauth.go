package unit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/fwconfig"
	"github.com/falab/falab/uauth"
)

// Cut-through proxy authentication in the unit: the uauth table (package
// uauth), its HTTP listener served on an ordinary socket in the unit's
// namespace, and the firewall's steering of unauthenticated sources to it
// (firewall AttachUAuth), which needs the unit's own IP stack (the box,
// the to-the-box path) to terminate the steered TCP. The table is a local
// table: an authentication is made to one unit and dies with it.

// reasonUAuth is why the uauth table is local.
const reasonUAuth = "an authentication is made to one unit and dies with it (the ASA never replicates uauth)"

// uauthSweepEvery is how often expired authentications are removed.
const uauthSweepEvery = 5 * time.Second

// newUAuth builds the uauth table of cfg; nil cfg: none.
func (u *Unit) newUAuth(cfg *fwconfig.UAuthConfig) error {
	if cfg == nil {
		return nil
	}
	c := uauth.DefaultConfig()
	c.ListenerPort = cfg.ListenerPort
	if cfg.Absolute != 0 || cfg.Inactivity != 0 {
		c.Absolute, c.Inactivity = cfg.Absolute, cfg.Inactivity
	}
	for _, us := range cfg.Users {
		h, err := uauth.ParseHash(us.Hash)
		if err != nil {
			return fmt.Errorf("user %s: %w", us.Name, err)
		}
		c.Users = append(c.Users, uauth.User{Name: us.Name, Hash: h})
	}
	t, err := uauth.New(c)
	if err != nil {
		return err
	}
	u.uauth, u.uauthCfg = t, cfg
	u.AddLocalTable("uauth", reasonUAuth, t.Len)
	return nil
}

// attachUAuthStack turns steering on once the unit has its own IP stack:
// the firewall then steers unauthenticated sources to the listener.
func (u *Unit) attachUAuthStack(stack firewall.LocalStack) error {
	if u.uauth == nil {
		return nil
	}
	c := u.uauthCfg
	if !u.fw.AttachUAuth(u.uauth, stack, c.Interface, c.Match, c.ListenerPort) {
		return fmt.Errorf("cut-through proxy: cannot steer on interface %s", c.Interface)
	}
	u.uauthSteering = true
	return nil
}

// uauthLoop serves the listener and expires authentications until ctx
// ends.
func (u *Unit) uauthLoop(ctx context.Context) {
	if u.uauth == nil {
		return
	}
	ln, err := net.Listen("tcp4", ":"+strconv.Itoa(int(u.uauthCfg.ListenerPort)))
	if err != nil {
		u.log.Error("uauth listener", "err", err)
		u.events.Add("uauth", fmt.Sprintf("cut-through proxy listener on port %d failed: %v", u.uauthCfg.ListenerPort, err))
		return
	}
	srv := &http.Server{Handler: u.uauth.Handler(), ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	u.spawn(func(ctx context.Context) {
		t := time.NewTicker(uauthSweepEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				u.uauth.Expire(now)
			}
		}
	})
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		u.log.Error("uauth listener", "err", err)
	}
}

// uauthInfo is the uauth table for `show uauth`.
func (u *Unit) uauthInfo() *api.UAuthInfo {
	t := u.uauth
	if t == nil {
		return nil
	}
	now := time.Now()
	info := &api.UAuthInfo{Unit: u.cfg.Name, Steered: u.fw.SteeredCount(), Entries: []api.UAuthEntry{}}
	info.Listener = fmt.Sprintf("http on %s port %d", u.uauthCfg.Interface, u.uauthCfg.ListenerPort)
	if !u.uauthSteering {
		info.Listener += " (not steering: this unit has no to-the-box path)"
	}
	for _, e := range t.Entries() {
		info.Entries = append(info.Entries, api.UAuthEntry{User: e.User, Addr: e.Addr, AuthenticatedAt: e.AuthenticatedAt,
			AbsoluteDeadline: e.AbsoluteDeadline, InactivityDeadline: e.InactivityDeadline})
	}
	var b bytes.Buffer
	_ = t.Show(&b, "", now)
	info.Text = b.String()
	return info
}

// serveUAuth answers GET /v1/uauth.
func (u *Unit) serveUAuth(w http.ResponseWriter, _ *http.Request) {
	info := u.uauthInfo()
	if info == nil {
		http.Error(w, fmt.Sprintf("unit %s has no cut-through proxy authentication (lab file firewall.aaa)", u.cfg.Name), http.StatusNotFound)
		return
	}
	writeJSON(w, info)
}

// serveClearUAuth answers POST /v1/uauth/clear: `clear uauth [USER]`, or
// one source address.
func (u *Unit) serveClearUAuth(w http.ResponseWriter, r *http.Request) {
	if u.uauth == nil {
		http.Error(w, fmt.Sprintf("unit %s has no cut-through proxy authentication", u.cfg.Name), http.StatusNotFound)
		return
	}
	user, addr := r.URL.Query().Get("user"), r.URL.Query().Get("addr")
	n := 0
	switch {
	case addr != "":
		a, err := netip.ParseAddr(addr)
		if err != nil {
			http.Error(w, "addr: "+err.Error(), http.StatusBadRequest)
			return
		}
		if u.uauth.Clear(a) {
			n = 1
		}
	case user != "":
		n = u.uauth.ClearUser(user)
	default:
		n = u.uauth.ClearAll()
	}
	u.events.Add("uauth", fmt.Sprintf("operator: clear uauth %s%s: %d removed", user, addr, n))
	writeJSON(w, map[string]int{"cleared": n})
}
