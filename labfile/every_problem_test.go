package labfile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/labs"
)

// editDefault applies edits (old, new pairs) to the default lab, failing
// the test if the default lab no longer holds an old text.
func editDefault(t *testing.T, edits [][2]string) []byte {
	t.Helper()
	base, ok := labs.Get("default")
	if !ok {
		t.Fatal("no default lab")
	}
	src := string(base)
	for _, e := range edits {
		if !strings.Contains(src, e[0]) {
			t.Fatalf("default lab no longer contains %q", e[0])
		}
		src = strings.Replace(src, e[0], e[1], 1)
	}
	return []byte(src)
}

// loadProblems loads src and returns every problem as the user reads it.
func loadProblems(t *testing.T, src []byte) []string {
	t.Helper()
	_, err := Load("x.yaml", src)
	if err == nil {
		return nil
	}
	probs, ok := err.(Problems)
	if !ok {
		t.Fatalf("error is %T, want Problems: %v", err, err)
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	return got
}

// TestEveryProblemAtOnce makes several mistakes in one file, of the kinds
// that used to hide one another (a type error stopped the validator; a
// kind typo cascaded into errors about its links), and checks that each
// is reported exactly once, in one run.
func TestEveryProblemAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edits [][2]string
		want  []string
	}{
		{
			name: "type error, mode, kind and unknown node together",
			edits: [][2]string{
				{"mode: routed", "mode: routd"},
				{"sw-inside:  {kind: switch}", "sw-inside:  {kind: swich}"},
				{"[server2:eth0, sw-outside]", "[server3:eth0, sw-outside]"},
				{"security_level: 0", "security_level: low"},
			},
			want: []string{
				`x.yaml:51: firewall.interfaces[1].security_level: expected a whole number, found "low"`,
				`x.yaml:9: mode: "routd" is not a mode (expected routed or transparent)`,
				`x.yaml:14: nodes.sw-inside.kind: "swich" is not a node kind (expected host, switch or unit)`,
				`x.yaml:37: links[3].endpoints[0]: unknown node "server3" (expected one of: fw-a, fw-b, sw-outside, client1, client2, server1, server2, sw-inside)`,
				`x.yaml:30: nodes.server2.interfaces.eth0: interface server2:eth0 is not cabled (expected a link in links)`,
			},
		},
		{
			// Four links name sw-inside; none of them, nor the units'
			// inside interface, is reported again.
			name:  "switch kind typo",
			edits: [][2]string{{"sw-inside:  {kind: switch}", "sw-inside:  {kind: swich}"}},
			want:  []string{`x.yaml:14: nodes.sw-inside.kind: "swich" is not a node kind (expected host, switch or unit)`},
		},
		{
			// Not "a lab has exactly two units", nor fw-b's failover link.
			name:  "unit kind typo",
			edits: [][2]string{{"fw-a:       {kind: unit, role: primary}", "fw-a:       {kind: unt, role: primary}"}},
			want:  []string{`x.yaml:12: nodes.fw-a.kind: "unt" is not a node kind (expected host, switch or unit)`},
		},
		{
			name:  "host kind typo",
			edits: [][2]string{{"client1:\n    kind: host", "client1:\n    kind: hots"}},
			want:  []string{`x.yaml:17: nodes.client1.kind: "hots" is not a node kind (expected host, switch or unit)`},
		},
		{
			name:  "kind missing",
			edits: [][2]string{{"sw-outside: {kind: switch}", "sw-outside: {}"}},
			want:  []string{`x.yaml:15: nodes.sw-outside.kind: missing; expected host, switch or unit`},
		},
		{
			// The node is left out by the parser: its links still name a
			// node that exists.
			name:  "node of the wrong shape",
			edits: [][2]string{{"sw-outside: {kind: switch}", "sw-outside: [switch]"}},
			want:  []string{`x.yaml:15: nodes.sw-outside: expected a mapping of fields, found a list`},
		},
		{
			// The field a typo was meant to be is not reported missing.
			name:  "unknown key hides its missing field",
			edits: [][2]string{{"security_level: 100", "secrity_level: 100"}, {"mode: routed", "mode: routd"}},
			want: []string{
				`x.yaml:47: firewall.interfaces[0].secrity_level: unknown field "secrity_level" (did you mean "security_level"?)`,
				`x.yaml:9: mode: "routd" is not a mode (expected routed or transparent)`,
			},
		},
		{
			name:  "duplicate key in a section",
			edits: [][2]string{{"  unit_poll: 20ms", "  unit_poll: 20ms\n  unit_poll: 30ms"}},
			want:  []string{`x.yaml:73: failover.unit_poll: duplicate key "unit_poll" (first on line 72)`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := loadProblems(t, editDefault(t, tt.edits))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestYAMLSyntaxLines checks that a file that is not YAML is reported at
// the line to edit, not where yaml.v3 noticed (an unclosed { on line 13
// was reported at 12, a bad indent on line 40 at 33).
func TestYAMLSyntaxLines(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edits [][2]string
		want  string
	}{
		{
			name:  "unclosed brace",
			edits: [][2]string{{"fw-b:       {kind: unit, role: secondary}", "fw-b:       {kind: unit, role: secondary"}},
			want:  `x.yaml:13: not valid YAML: did not find expected ',' or '}' (this '{' is not closed)`,
		},
		{
			name:  "unclosed inner brace",
			edits: [][2]string{{"    interfaces: {eth0: {address: 198.18.1.11/24}}", "    interfaces: {eth0: {address: 198.18.1.11/24}"}},
			want:  `x.yaml:18: not valid YAML: did not find expected ',' or '}' (this '{' is not closed)`,
		},
		{
			name:  "unclosed bracket",
			edits: [][2]string{{"  - endpoints: [fw-a:outside, sw-outside]", "  - endpoints: [fw-a:outside, sw-outside"}},
			want:  `x.yaml:40: not valid YAML: did not find expected ',' or ']' (this '[' is not closed)`,
		},
		{
			name:  "list item indented too far",
			edits: [][2]string{{"  - endpoints: [fw-a:outside, sw-outside]", "   - endpoints: [fw-a:outside, sw-outside]"}},
			want:  `x.yaml:40: not valid YAML: did not find expected '-' indicator (indented to column 4, which matches no enclosing block)`,
		},
		{
			name:  "key among list items",
			edits: [][2]string{{"    - name: outside\n      security_level: 0\n", "    - name: outside\n    security_level: 0\n"}},
			want:  `x.yaml:51: not valid YAML: did not find expected '-' indicator (a key among list items (expected "- "))`,
		},
		{
			name:  "key dedented into no block",
			edits: [][2]string{{"  client1:\n    kind: host\n", "  client1:\n    kind: host\n   gateway: 1\n"}},
			want:  `x.yaml:18: not valid YAML: did not find expected key (indented to column 4, which matches no enclosing block)`,
		},
		{
			// A scanner error names its own line already.
			name:  "key indented too far",
			edits: [][2]string{{"    - name: outside\n      security_level: 0\n", "    - name: outside\n       security_level: 0\n"}},
			want:  `x.yaml:51: not valid YAML: mapping values are not allowed in this context (indented to column 8 under a line that opens no block)`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := loadProblems(t, editDefault(t, tt.edits))
			if diff := cmp.Diff([]string{tt.want}, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
