package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/falab/falab/lab"
)

// runCLI runs one command line in-process and returns its exit status and
// output. None of the command lines the tests give touches the machine.
func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// visibleVerbs lists every command a user can type, subcommands included
// (completion bash, ...); the internal agent and unit are hidden.
func visibleVerbs(c *cobra.Command, path []string) [][]string {
	var out [][]string
	for _, sub := range c.Commands() {
		if sub.Hidden {
			continue
		}
		p := append(append([]string(nil), path...), sub.Name())
		out = append(out, p)
		out = append(out, visibleVerbs(sub, p)...)
	}
	return out
}

// TestEveryVerbHelp: `falab VERB --help` exits 0 and documents every flag
// of the verb, its own and the inherited ones, each with a usage text.
func TestEveryVerbHelp(t *testing.T) {
	root := newRoot(&env{})
	verbs := visibleVerbs(root, nil)
	if len(verbs) < 16 {
		t.Fatalf("only %d verbs: %v", len(verbs), verbs)
	}
	for _, v := range verbs {
		t.Run(strings.Join(v, "_"), func(t *testing.T) {
			code, out, errOut := runCLI(append(v, "--help")...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			cmd, _, err := newRoot(&env{}).Find(v)
			if err != nil {
				t.Fatal(err)
			}
			check := func(f *pflag.Flag) {
				if !strings.Contains(out, "--"+f.Name) {
					t.Errorf("help does not list --%s:\n%s", f.Name, out)
				}
				if f.Usage == "" {
					t.Errorf("--%s has no usage text", f.Name)
				}
			}
			cmd.LocalFlags().VisitAll(check)
			cmd.InheritedFlags().VisitAll(check)
		})
	}
}

// TestLabFlagOnLabVerbs: every verb that works on a running lab takes
// --lab and says so in its usage line.
func TestLabFlagOnLabVerbs(t *testing.T) {
	root := newRoot(&env{})
	for _, name := range []string{"tui", "down", "status", "exec", "shell", "show", "failover", "traffic", "fault", "capture"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Flags().Lookup("lab") == nil {
			t.Errorf("%s has no --lab", name)
		}
		if !strings.Contains(cmd.UseLine(), "--lab") {
			t.Errorf("%s: usage %q does not name --lab", name, cmd.UseLine())
		}
	}
}

// TestCompletion: the shell completion scripts are there.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runCLI("completion", sh)
		if code != exitOK || !strings.Contains(out, "falab") {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", sh, code, len(out), errOut)
		}
	}
}

// TestUsageErrors: a bad command line exits 2 with the verb's usage line;
// nothing runs.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nope"}, {"labs", "--bogus"}, {"validate"}, {"labs", "extra"},
		{"show", "service-policy", "inspect", "gtp"}, {"show", "service-policy", "inspect", "gtp", "pdp-context", "brief"},
	} {
		code, _, errOut := runCLI(args...)
		if code != exitUsage || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestValidateJSONKeys: validate --json names its fields in snake_case,
// as every other command does, and exits 1 on problems.
func TestValidateJSONKeys(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: badlab\nnodes:\n  h1: {kind: hots}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI("validate", "--json", bad)
	if code != exitFail {
		t.Fatalf("exit %d, want %d; out %s", code, exitFail, out)
	}
	var probs []map[string]any
	if err := json.Unmarshal([]byte(out), &probs); err != nil || len(probs) == 0 {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"file", "line", "field", "msg"} {
		if _, ok := probs[0][k]; !ok {
			t.Errorf("key %q missing in %v", k, probs[0])
		}
	}
}

// fakeRunning records labs as running in a temporary run directory (state
// only: nothing is built).
func fakeRunning(t *testing.T, names ...string) {
	t.Helper()
	t.Setenv("FALAB_RUN_DIR", t.TempDir())
	for _, n := range names {
		if err := lab.WriteState(&lab.State{Name: n, Phase: lab.PhaseUp, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPickLab: the lab a command means with 0, 1 and 2 labs running, by
// positional argument, --lab and FALAB_LAB.
func TestPickLab(t *testing.T) {
	for _, tt := range []struct {
		name               string
		running            []string
		flag, pos, envLab  string
		want, wantErrParts string
	}{
		{name: "none running", wantErrParts: "no lab is running"},
		{name: "none running, named", flag: "a", wantErrParts: "lab a is not running"},
		{name: "one running", running: []string{"a"}, want: "a"},
		{name: "one running, other named", running: []string{"a"}, envLab: "b", wantErrParts: "lab b is not running (running: a)"},
		{name: "two, none named", running: []string{"a", "b"}, wantErrParts: "2 labs are running (a, b): say which with --lab NAME or FALAB_LAB=NAME"},
		{name: "two, --lab", running: []string{"a", "b"}, flag: "b", want: "b"},
		{name: "two, FALAB_LAB", running: []string{"a", "b"}, envLab: "a", want: "a"},
		{name: "two, --lab over FALAB_LAB", running: []string{"a", "b"}, envLab: "a", flag: "b", want: "b"},
		{name: "two, positional", running: []string{"a", "b"}, pos: "b", want: "b"},
		{name: "positional and --lab disagree", running: []string{"a", "b"}, pos: "a", flag: "b", wantErrParts: "give one"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fakeRunning(t, tt.running...)
			t.Setenv(labEnv, tt.envLab)
			got, err := pickLab(tt.flag, tt.pos)
			if tt.wantErrParts != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrParts) {
					t.Fatalf("got %q, %v; want error with %q", got, err, tt.wantErrParts)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestShowServicePolicyArgs: the ASA's words for the PDP context table are
// accepted, detail or not; anything else is a usage error.
func TestShowServicePolicyArgs(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		detail bool
		ok     bool
	}{
		{[]string{"service-policy", "inspect", "gtp", "pdp-context"}, false, true},
		{[]string{"service-policy", "inspect", "gtp", "pdp-context", "detail"}, true, true},
		{[]string{"service-policy", "inspect", "sip", "pdp-context"}, false, false},
		{[]string{"conn"}, false, true},
		{[]string{"conn", "extra"}, false, false},
	} {
		err := showArgs(tc.args)
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v, want ok %v", tc.args, err, tc.ok)
		}
		if tc.args[0] == "service-policy" && tc.ok {
			if d, _ := pdpDetail(tc.args); d != tc.detail {
				t.Errorf("%q: detail %v", tc.args, d)
			}
		}
	}
}
