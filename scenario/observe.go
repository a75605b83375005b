package scenario

// Check is one expectation of a step as `run --json` reports it: what was
// expected and what was observed, as values rather than prose (Detail
// keeps the prose), so a reader or a dashboard can compare runs.
type Check struct {
	Check    string `json:"check"` // e.g. traffic.streams.survived, state.fw-b
	Expected string `json:"expected"`
	Observed string `json:"observed"`
	OK       bool   `json:"ok"`
	Detail   string `json:"detail,omitempty"`
}

// noteCheck records a check of the expectation being evaluated (the last
// evaluation of a wait_for or expect is what its step reports).
func (r *runner) noteCheck(c Check) { r.checks = append(r.checks, c) }

// stateCheck records unit u's failover state against want.
func (r *runner) stateCheck(u, want, got string) {
	r.noteCheck(Check{Check: "state." + u, Expected: want, Observed: got, OK: got == want})
}
