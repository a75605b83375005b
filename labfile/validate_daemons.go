package labfile

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

// envKeyRE is a portable environment variable name (POSIX).
var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// daemons resolves the daemons of host node (at field f): names unique,
// commands present, file names inside the node's directory, env names
// valid, one ready condition. Whether the program exists is checked by
// `falab up` (this package does no I/O).
func (v *validator) daemons(f, node string, specs []*DaemonSpec) []Daemon {
	var out []Daemon
	seen := map[string]string{} // name -> field
	envSeen := map[string]string{}
	for i, ds := range specs {
		ff := fmt.Sprintf("%s.daemons[%d]", f, i)
		if ds == nil {
			v.errf(ff, "empty daemon; expected name and command")
			continue
		}
		d := Daemon{Name: ds.Name, Package: ds.Package, PrivateRun: ds.PrivateRun, Field: ff, Line: v.pos.Line(ff + ".command")}
		switch {
		case ds.Name == "":
			v.errf(ff+".name", "missing; expected a daemon name like charon")
		case len(ds.Name) > maxNodeName || !nameRE.MatchString(ds.Name):
			v.errf(ff+".name", "%q is not a daemon name (expected lower-case letters, digits and dashes, at most %d characters)", ds.Name, maxNodeName)
		default:
			if prev, dup := seen[ds.Name]; dup {
				v.errf(ff+".name", "duplicate daemon %q on %s (first at %s, line %d)", ds.Name, node, prev, v.pos.Line(prev))
			}
			seen[ds.Name] = ff + ".name"
		}
		d.Command = ds.Command
		if len(ds.Command) == 0 || ds.Command[0] == "" {
			v.errf(ff+".command", "missing; expected the program and its arguments, like [osmo-ggsn, -c, \"{dir}/ggsn.cfg\"]")
		}
		d.Files = v.daemonFiles(ff+".files", ds.Files)
		d.Env = v.daemonEnv(ff+".env", ds.Env, envSeen)
		d.ReadyLog, d.ReadyWait, d.ReadyTimeout = v.daemonReady(ff+".ready", ds.Ready)
		out = append(out, d)
	}
	return out
}

// daemonFiles checks that every file name stays inside the node's
// directory: relative, clean, no "..".
func (v *validator) daemonFiles(f string, files map[string]string) []DaemonFile {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []DaemonFile
	for _, n := range names {
		if !safeRelativeName(n) {
			v.errf(f+"."+n, "%q is not a file name inside the node's directory (expected a relative path like strongswan.conf or conf/ggsn.cfg, without .. or a leading /)", n)
			continue
		}
		out = append(out, DaemonFile{Name: n, Content: files[n]})
	}
	return out
}

// safeRelativeName says whether name, joined to a directory, stays in it.
func safeRelativeName(name string) bool {
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == "." {
		return false
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return false
		}
	}
	return true
}

// daemonEnv checks env names, and that no two daemons of a host give one
// variable two values: `falab exec` sets them all in one environment.
// hostEnv maps KEY=VALUE already set on the host to the field that set it.
func (v *validator) daemonEnv(f string, env map[string]string, hostEnv map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		ff := f + "." + k
		if !envKeyRE.MatchString(k) {
			v.errf(ff, "%q is not an environment variable name (expected letters, digits and _, not starting with a digit)", k)
			continue
		}
		if prev, ok := hostEnv[k]; ok && prev != env[k] {
			v.errf(ff, "%s is set to another value by another daemon of this host (falab exec sets both daemons' env at once; expected one value)", k)
		}
		hostEnv[k] = env[k]
		out = append(out, k+"="+env[k])
	}
	return out
}

// daemonReady resolves ready: a valid log pattern or a wait, not both.
func (v *validator) daemonReady(f string, r *DaemonReadySpec) (log string, wait, timeout time.Duration) {
	timeout = DefaultDaemonReadyTimeout
	if r == nil {
		return "", 0, timeout
	}
	switch {
	case r.Log != "" && r.Wait != nil:
		v.errf(f, "both log and wait (expected one: a log line to wait for, or a fixed delay)")
	case r.Log == "" && r.Wait == nil:
		v.errf(f, "empty (expected log: REGEXP or wait: DURATION)")
	}
	if r.Log != "" {
		if _, err := regexp.Compile(r.Log); err != nil {
			v.errf(f+".log", "%q is not a regular expression: %s", r.Log, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
	if r.Timeout != nil {
		if r.Log == "" {
			v.errf(f+".timeout", "applies to log only (wait is a fixed delay)")
		}
		timeout = v.duration(f+".timeout", r.Timeout, timeout)
	}
	return r.Log, r.Wait.D(0), timeout
}
