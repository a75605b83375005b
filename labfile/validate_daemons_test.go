package labfile

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/labs"
)

// withDaemons puts yaml (indented for client1's fields) into the default
// lab after client1's gateway, on line 20.
func withDaemons(t *testing.T, yaml string) []byte {
	t.Helper()
	base, _ := labs.Get("default")
	const anchor = "    gateway: 198.18.1.1\n  client2:"
	src := string(base)
	if !strings.Contains(src, anchor) {
		t.Fatalf("default lab no longer contains %q", anchor)
	}
	return []byte(strings.Replace(src, anchor, "    gateway: 198.18.1.1\n"+yaml+"  client2:", 1))
}

func TestDaemonResolved(t *testing.T) {
	src := withDaemons(t, `    daemons:
      - name: charon
        command: [/usr/lib/ipsec/charon, --debug-ike, "1"]
        package: strongswan-charon
        private_run: true
        env: {STRONGSWAN_CONF: "{dir}/strongswan.conf", A_B: x}
        files:
          strongswan.conf: "charon { load_modular = no }\n"
          swanctl/swanctl.conf: ""
        ready: {log: "charon \\(\\d+\\) started"}
      - name: idle
        command: [sleep, "1000"]
        ready: {wait: 200ms}
`)
	l, err := Load("x.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := l.Host("client1")
	want := []Daemon{
		{
			Name: "charon", Command: []string{"/usr/lib/ipsec/charon", "--debug-ike", "1"}, Package: "strongswan-charon",
			Files: []DaemonFile{
				{Name: "strongswan.conf", Content: "charon { load_modular = no }\n"},
				{Name: "swanctl/swanctl.conf", Content: ""},
			},
			Env:        []string{"A_B=x", "STRONGSWAN_CONF={dir}/strongswan.conf"},
			PrivateRun: true, ReadyLog: `charon \(\d+\) started`, ReadyTimeout: DefaultDaemonReadyTimeout,
			Field: "nodes.client1.daemons[0]", Line: 22,
		},
		{
			Name: "idle", Command: []string{"sleep", "1000"}, ReadyWait: 200 * time.Millisecond,
			ReadyTimeout: DefaultDaemonReadyTimeout, Field: "nodes.client1.daemons[1]", Line: 31,
		},
	}
	if diff := cmp.Diff(want, h.Daemons); diff != "" {
		t.Errorf("daemons (-want +got):\n%s", diff)
	}
}

// TestDaemonMistakes makes every daemon mistake at once and checks that
// each is reported, with its line, in one run.
func TestDaemonMistakes(t *testing.T) {
	src := withDaemons(t, `    daemons:
      - name: ggsn
        command: []
        files: {../etc/passwd: x, /etc/shadow: y, a/./b: z, ok.cfg: fine}
        env: {1BAD: x, GOOD: "{dir}"}
        ready: {log: "(", wait: 1s}
      - name: ggsn
        command: [osmo-ggsn]
        env: {GOOD: other}
        ready: {}
      - name: Bad_Name
        command: [""]
        ready: {wait: 1s, timeout: 2s}
      - comand: [x]
`)
	_, err := Load("x.yaml", src)
	var got []string
	if probs, ok := err.(Problems); ok {
		for _, p := range probs {
			got = append(got, p.String())
		}
	} else {
		t.Fatalf("error %T: %v", err, err)
	}
	want := []string{
		`x.yaml:33: nodes.client1.daemons[3].comand: unknown field "comand" (did you mean "command"?)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parse problems (-want +got):\n%s", diff)
	}

	// Without the unknown key, the validator reports the rest together.
	src = []byte(strings.Replace(string(src), "      - comand: [x]\n", "", 1))
	_, err = Load("x.yaml", src)
	got = nil
	for _, p := range err.(Problems) {
		got = append(got, p.String())
	}
	want = []string{
		`x.yaml:22: nodes.client1.daemons[0].command: missing; expected the program and its arguments, like [osmo-ggsn, -c, "{dir}/ggsn.cfg"]`,
		`x.yaml:23: nodes.client1.daemons[0].files.../etc/passwd: "../etc/passwd" is not a file name inside the node's directory (expected a relative path like strongswan.conf or conf/ggsn.cfg, without .. or a leading /)`,
		`x.yaml:23: nodes.client1.daemons[0].files./etc/shadow: "/etc/shadow" is not a file name inside the node's directory (expected a relative path like strongswan.conf or conf/ggsn.cfg, without .. or a leading /)`,
		`x.yaml:23: nodes.client1.daemons[0].files.a/./b: "a/./b" is not a file name inside the node's directory (expected a relative path like strongswan.conf or conf/ggsn.cfg, without .. or a leading /)`,
		`x.yaml:24: nodes.client1.daemons[0].env.1BAD: "1BAD" is not an environment variable name (expected letters, digits and _, not starting with a digit)`,
		`x.yaml:25: nodes.client1.daemons[0].ready: both log and wait (expected one: a log line to wait for, or a fixed delay)`,
		`x.yaml:25: nodes.client1.daemons[0].ready.log: "(" is not a regular expression: missing closing ): ` + "`(`",
		`x.yaml:26: nodes.client1.daemons[1].name: duplicate daemon "ggsn" on client1 (first at nodes.client1.daemons[0].name, line 21)`,
		`x.yaml:28: nodes.client1.daemons[1].env.GOOD: GOOD is set to another value by another daemon of this host (falab exec sets both daemons' env at once; expected one value)`,
		`x.yaml:29: nodes.client1.daemons[1].ready: empty (expected log: REGEXP or wait: DURATION)`,
		`x.yaml:30: nodes.client1.daemons[2].name: "Bad_Name" is not a daemon name (expected lower-case letters, digits and dashes, at most 24 characters)`,
		`x.yaml:31: nodes.client1.daemons[2].command: missing; expected the program and its arguments, like [osmo-ggsn, -c, "{dir}/ggsn.cfg"]`,
		`x.yaml:32: nodes.client1.daemons[2].ready.timeout: applies to log only (wait is a fixed delay)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestDaemonsOnlyOnHosts(t *testing.T) {
	base, _ := labs.Get("default")
	src := strings.Replace(string(base), "fw-a:       {kind: unit, role: primary}", "fw-a:       {kind: unit, role: primary, daemons: [{name: x, command: [x]}]}", 1)
	src = strings.Replace(src, "sw-inside:  {kind: switch}", "sw-inside:  {kind: switch, daemons: [{name: x, command: [x]}]}", 1)
	_, err := Load("x.yaml", []byte(src))
	want := "x.yaml:12: nodes.fw-a.daemons: only hosts run daemons (expected them on a host node)\n" +
		"x.yaml:14: nodes.sw-inside.daemons: only hosts run daemons (expected them on a host node)"
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

func TestSafeRelativeName(t *testing.T) {
	for name, want := range map[string]bool{
		"a.conf": true, "dir/a.conf": true, ".hidden": true, "a..b": true,
		"": false, ".": false, "..": false, "../a": false, "a/../b": false, "/a": false,
		"a/": false, "a//b": false, "./a": false,
	} {
		if got := safeRelativeName(name); got != want {
			t.Errorf("safeRelativeName(%q) = %v, want %v", name, got, want)
		}
	}
}
