package labfile

import (
	"fmt"
	"strings"

	"github.com/falab/falab/fwconfig"
)

// AAASpec is cut-through proxy authentication in the lab file, after the
// ASA's commands:
//
//	aaa:
//	  authentication:                 # aaa authentication match ACL inside LOCAL
//	    interface: inside
//	    match: [{action: permit, protocol: tcp, source: any, destination: any, port: "80"}]
//	  listener: {port: 1080}          # aaa authentication listener http inside port 1080
//	  users: [{name: alice, hash: "$argon2id$v=19$..."}]   # falab hash-password
//	  timeout_uauth: {absolute: 5m, inactivity: 1m}
//
// fwconfig.Check checks the interface, the match's protocols and the users.
type AAASpec struct {
	Authentication *AAAAuthSpec      `yaml:"authentication"`
	Listener       *AAAListenerSpec  `yaml:"listener"`
	Users          []*AAAUserSpec    `yaml:"users"`
	TimeoutUAuth   *TimeoutUAuthSpec `yaml:"timeout_uauth"`
}

// AAAAuthSpec is "aaa authentication match ACL IFACE LOCAL".
type AAAAuthSpec struct {
	Interface string     `yaml:"interface"`
	Match     []*ACESpec `yaml:"match"`
}

// AAAListenerSpec is "aaa authentication listener http IFACE port N".
type AAAListenerSpec struct {
	Port int `yaml:"port"`
}

// AAAUserSpec is one LOCAL user with its argon2id hash.
type AAAUserSpec struct {
	Name string `yaml:"name"`
	Hash string `yaml:"hash"`
}

// TimeoutUAuthSpec is "timeout uauth ... absolute" and "... inactivity".
type TimeoutUAuthSpec struct {
	Absolute   *Duration `yaml:"absolute"`
	Inactivity *Duration `yaml:"inactivity"`
}

// uauth resolves the aaa section, or nil when there is none.
func (v *validator) uauth(as *AAASpec) *fwconfig.UAuthConfig {
	if as == nil {
		return nil
	}
	u := &fwconfig.UAuthConfig{ListenerPort: 80}
	if a := as.Authentication; a == nil {
		v.errf("firewall.aaa.authentication", "missing; expected interface and match")
	} else {
		u.Interface = a.Interface
		for i, e := range a.Match {
			f := fmt.Sprintf("firewall.aaa.authentication.match[%d]", i)
			if e == nil {
				v.errf(f, "empty entry; expected action, protocol, source, destination")
				continue
			}
			ace := v.ace(f, e)
			u.Match = append(u.Match, fwconfig.ACE{Permit: ace.Permit, Protocol: ace.Protocol, Source: ace.Source,
				Destination: ace.Destination, DstPortLow: ace.PortLow, DstPortHigh: ace.PortHigh})
		}
	}
	if l := as.Listener; l != nil && l.Port != 0 {
		if l.Port < 1 || l.Port > 65535 {
			v.errf("firewall.aaa.listener.port", "%d is not a port", l.Port)
		} else {
			u.ListenerPort = uint16(l.Port)
		}
	}
	for i, us := range as.Users {
		if us == nil {
			v.errf(fmt.Sprintf("firewall.aaa.users[%d]", i), "empty user; expected name and hash")
			continue
		}
		u.Users = append(u.Users, fwconfig.UAuthUser{Name: us.Name, Hash: us.Hash})
	}
	if t := as.TimeoutUAuth; t != nil {
		u.Absolute, u.Inactivity = t.Absolute.D(0), t.Inactivity.D(0)
	}
	return u
}

// uauthField maps a fwconfig uauth path to the lab file's aaa field.
func uauthField(path string) string {
	r := strings.NewReplacer("uauth.interface", "firewall.aaa.authentication.interface",
		"uauth.match", "firewall.aaa.authentication.match", "uauth.users", "firewall.aaa.users",
		"uauth.absolute", "firewall.aaa.timeout_uauth.absolute", "uauth.listener_port", "firewall.aaa.listener.port")
	if p := r.Replace(path); p != path {
		return labFieldNames.Replace(p)
	}
	return "firewall.aaa"
}
