package scenario

import (
	"strings"
	"testing"

	"github.com/falab/falab/lab"
)

// TestRunProblems: each run expectation fails exactly when its program's
// result says otherwise.
func TestRunProblems(t *testing.T) {
	zero, one, yes, no := 0, 1, true, false
	done := lab.CommandResult{Exit: 0, Output: "PDP context created\n6 packets transmitted, 6 received\n"}
	running := lab.CommandResult{Exit: -1, Running: true, Output: "waiting\n"}
	tests := []struct {
		name string
		x    RunExpect
		res  lab.CommandResult
		want string // "" for no problem
	}{
		{"exit ok", RunExpect{Exit: &zero}, done, ""},
		{"exit wrong", RunExpect{Exit: &one}, done, "exit 0, expected 1"},
		{"exit while running", RunExpect{Exit: &zero}, running, "still running"},
		{"running", RunExpect{Running: &yes}, running, ""},
		{"not running", RunExpect{Running: &no}, running, "running is true"},
		{"output", RunExpect{Output: `6 received`}, done, ""},
		{"output missing", RunExpect{Output: `7 received`}, done, "does not match"},
		{"not output", RunExpect{NotOutput: `unreachable`}, done, ""},
		{"not output present", RunExpect{NotOutput: `created`}, done, `has "created"`},
	}
	for _, tt := range tests {
		got := strings.Join(runProblems("c", &tt.x, tt.res), "; ")
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s: problems %q, want %q", tt.name, got, tt.want)
		}
	}
}
