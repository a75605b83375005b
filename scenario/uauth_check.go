package scenario

import "fmt"

// uauthExpect validates an expectation's uauth counts at field f.
func (v *validator) uauthExpect(f string, m map[string]string) {
	for who, cond := range m {
		if _, _, err := parseCount(cond); err != nil {
			v.errf(f+".uauth."+who, "%v", err)
		}
	}
}

// checkUAuth compares each named unit's uauth entries (from its status's
// local tables) with e.UAuth. The table is never replicated, so after an
// authentication the active has the entry and the standby none.
func (r *runner) checkUAuth(us *unitStatuses, e *ExpectSpec) []string {
	var problems []string
	for _, who := range keys(e.UAuth) {
		unit := r.roleUnit(us, who)
		s := us.get(unit)
		if s == nil {
			problems = append(problems, fmt.Sprintf("uauth on %s: no unit answers as %s", who, who))
			continue
		}
		n := -1
		for _, l := range s.Local {
			if l.Table == "uauth" {
				n = l.Entries
			}
		}
		if n < 0 {
			problems = append(problems, fmt.Sprintf("uauth on %s: %s has no uauth table", who, unit))
			continue
		}
		op, want, _ := parseCount(e.UAuth[who])
		if !compare(uint64(n), op, want) {
			problems = append(problems, fmt.Sprintf("uauth on %s (%s): %d entries, expected %s%d", who, unit, n, op, want))
		}
	}
	return problems
}

// roleUnit names the unit that is who now: "active" or "standby" by the
// units' statuses, else who itself.
func (r *runner) roleUnit(us *unitStatuses, who string) string {
	if who != "active" && who != "standby" {
		return who
	}
	for _, u := range r.l.Units {
		if s := us.get(u.Name); s != nil && s.Active == (who == "active") {
			return u.Name
		}
	}
	return who
}
