package fwconfig

import (
	"fmt"
	"strings"
	"time"
)

// UAuthConfig is cut-through proxy authentication, as an ASA configures it:
//
//	aaa authentication match ACL IFACE LOCAL      (Match, Interface)
//	aaa authentication listener http IFACE port N (ListenerPort)
//	username NAME password ...                    (Users)
//	timeout uauth H:MM:SS absolute|inactivity     (Absolute, Inactivity)
//
// The first TCP connection from an unauthenticated source that enters on
// Interface and matches Match is steered to the unit's own listener,
// which asks for a user name and password; the uauth table (never
// replicated) then lets that source's connections pass.
type UAuthConfig struct {
	Match        []ACE         `json:"match"` // permit: authentication required; deny: exempt
	Interface    string        `json:"interface"`
	ListenerPort uint16        `json:"listener_port"` // default 80
	Users        []UAuthUser   `json:"users"`
	Absolute     time.Duration `json:"absolute"`   // 0 with Inactivity 0: the ASA default (5m absolute)
	Inactivity   time.Duration `json:"inactivity"` // 0: off
}

// UAuthUser is one user of the LOCAL database; Hash is an argon2id PHC
// string ($argon2id$v=19$m=...,t=...,p=...$SALT$KEY): a lab file never
// holds a password.
type UAuthUser struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

// uauth checks cut-through proxy authentication.
func (v *checker) uauth() {
	u := v.c.UAuth
	if u == nil {
		return
	}
	if v.transparent() {
		v.errf("uauth", "cut-through proxy authentication needs routed mode (the listener is on an interface address)")
	}
	if _, ok := v.ifs[u.Interface]; !ok {
		v.errf("uauth.interface", "%q is not a data interface", u.Interface)
	}
	if len(u.Match) == 0 {
		v.errf("uauth.match", "missing; expected the access list of the traffic that needs authentication")
	}
	for i, a := range u.Match {
		if a.Protocol != "tcp" {
			v.errf(fmt.Sprintf("uauth.match[%d].protocol", i), "cut-through proxy authenticates TCP only (found %q)", a.Protocol)
		}
	}
	if len(u.Users) == 0 {
		v.errf("uauth.users", "missing; LOCAL authentication needs at least one user")
	}
	seen := map[string]bool{}
	for i, us := range u.Users {
		f := fmt.Sprintf("uauth.users[%d]", i)
		if us.Name == "" || seen[us.Name] {
			v.errf(f+".name", "user name %q empty or repeated", us.Name)
		}
		seen[us.Name] = true
		if !strings.HasPrefix(us.Hash, "$argon2id$") {
			v.errf(f+".hash", "not an argon2id hash (expected $argon2id$v=19$m=...,t=...,p=...$SALT$KEY; `falab hash-password` makes one)")
		}
	}
	if u.Absolute < 0 || u.Inactivity < 0 {
		v.errf("uauth.absolute", "negative timeout")
	}
}
