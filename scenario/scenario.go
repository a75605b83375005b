package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
)

// ScenarioSpec is a scenario file: which lab, then steps that start
// traffic, inject faults, wait and check expectations.
type ScenarioSpec struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Lab is a built-in lab's name or a lab file's path (relative to
	// the scenario file).
	Lab string `yaml:"lab"`
	// MACMode and HTTPReplication override the lab's failover settings.
	MACMode         string `yaml:"mac_mode"`
	HTTPReplication *bool  `yaml:"http_replication"`
	// Replicate overrides the lab's failover.replicate (engine tables'
	// replication, for negative controls).
	Replicate *labfile.ReplicateSpec `yaml:"replicate"`
	Steps     []*StepSpec            `yaml:"steps"`
}

// StepSpec is one step; exactly one of its fields is set.
type StepSpec struct {
	Wait        *labfile.Duration `yaml:"wait"`
	WaitFor     *ExpectSpec       `yaml:"wait_for"`
	Expect      *ExpectSpec       `yaml:"expect"`
	Traffic     *TrafficSpec      `yaml:"traffic"`
	StopTraffic []string          `yaml:"stop_traffic"`
	Fault       *FaultSpec        `yaml:"fault"`
	Repeat      *RepeatSpec       `yaml:"repeat"`
	Mark        string            `yaml:"mark"`
	Chaos       *ChaosSpec        `yaml:"chaos"`
	Run         *RunSpec          `yaml:"run"`
}

// ChaosSpec injects random faults, one after another, each followed by its
// repair and a wait for a healthy pair, while both units' roles are
// sampled every 10 ms (see chaos.go).
type ChaosSpec struct {
	Faults int   `yaml:"faults"` // how many faults (1 to 1000)
	Seed   int64 `yaml:"seed"`   // 0: a seed from the clock, printed in the report
	// Kinds limits the faults drawn (default all): kill, freeze, cut,
	// link, power-off, restart, failover.
	Kinds []string `yaml:"kinds"`
	// Settle is how long the pair may take to be healthy again after a
	// fault's repair (default 10s).
	Settle *labfile.Duration `yaml:"settle"`
}

// TrafficSpec starts a traffic generator (see Traffic).
type TrafficSpec struct {
	Name      string            `yaml:"name"`
	Kind      string            `yaml:"kind"`
	Client    string            `yaml:"client"`
	Server    string            `yaml:"server"`
	Flows     int               `yaml:"flows"`
	Direction string            `yaml:"direction"`
	Rate      int               `yaml:"rate"`
	Interval  *labfile.Duration `yaml:"interval"`
	Port      int               `yaml:"port"`
	Target    string            `yaml:"target"`
}

// FaultSpec is one fault; exactly one field is set.
type FaultSpec struct {
	Kill         string    `yaml:"kill"`
	Freeze       string    `yaml:"freeze"`
	Thaw         string    `yaml:"thaw"`
	Restart      string    `yaml:"restart"`
	PowerOff     string    `yaml:"power_off"`
	LinkDown     string    `yaml:"link_down"`
	LinkUp       string    `yaml:"link_up"`
	CutFailover  bool      `yaml:"cut_failover"`
	HealFailover bool      `yaml:"heal_failover"`
	Loss         *LossSpec `yaml:"loss"`
	Clear        string    `yaml:"clear"`
	// Failover makes the named unit active ("standby" means whichever
	// unit is standby now).
	Failover string `yaml:"failover"`
}

// LossSpec is packet loss on a link end.
type LossSpec struct {
	Link    string  `yaml:"link"`
	Percent float64 `yaml:"percent"`
}

// RepeatSpec repeats steps.
type RepeatSpec struct {
	Times int         `yaml:"times"`
	Steps []*StepSpec `yaml:"steps"`
}

// ExpectSpec is a set of checks; with Within they are retried until all
// pass or the time is up.
type ExpectSpec struct {
	Within       *labfile.Duration         `yaml:"within"`
	Active       string                    `yaml:"active"`
	StandbyReady string                    `yaml:"standby_ready"`
	State        map[string]string         `yaml:"state"`
	FailoverLink string                    `yaml:"failover_link"` // up or failed
	StandbyHas   string                    `yaml:"standby_has"`   // all-conns: the standby holds every replicated conn of the active; bridge-table: the same bridge table; gtp-pdp-contexts: the same PDP contexts and TEIDs
	Traffic      map[string]*TrafficExpect `yaml:"traffic"`
	ARP          []*ARPExpect              `yaml:"arp"`
	// OneAnswer: every host asks for its gateway by ARP on the wire and
	// exactly one unit answers (GatewayAnswers).
	OneAnswer bool `yaml:"one_answer"`
	// SteadyReplication: each unit's state session has held since it
	// began: one session, no session errors, one bulk sync, no resync,
	// no queue overflow, no digest mismatch.
	SteadyReplication bool `yaml:"steady_replication"`
	// MaxTerm: no unit's failover term is above this (every takeover
	// raises the term: a cut link that made a needless takeover shows).
	MaxTerm int               `yaml:"max_term"`
	Drops   map[string]string `yaml:"drops"` // reason: ">0", "0", ">=N"
	// Module compares the active unit's service module counters
	// (module_check.go): counter: ">0", "0", ">=N".
	Module map[string]string `yaml:"module"`
	// UAuth counts each unit's uauth entries (uauth_check.go): key
	// active, standby or a unit's name; value ">0", "0", ">=N".
	UAuth map[string]string `yaml:"uauth"`
	// Run checks run steps' programs by name; Log counts matching lines
	// of files in the lab's state dir (see run_step.go).
	Run map[string]*RunExpect `yaml:"run"`
	Log []*LogExpect          `yaml:"log"`
	// Voice checks softphone traffic's VoiceReport (voice_checks.go).
	Voice map[string]*VoiceExpect `yaml:"voice"`
}

// TrafficExpect checks a generator's client report.
type TrafficExpect struct {
	Survived    string            `yaml:"survived"`     // at least this share of flows survived, e.g. 100%
	MaxSurvived string            `yaml:"max_survived"` // at most this share survived, e.g. 0% (HTTP replication off)
	Resets      *int              `yaml:"resets"`
	MinResets   *int              `yaml:"min_resets"`
	MaxGap      *labfile.Duration `yaml:"max_gap"`
	MaxLost     *int              `yaml:"max_lost"`
	// SameMapping: the server saw one source address:port per flow (NAT
	// kept its mapping through the fault).
	SameMapping bool `yaml:"same_mapping"`
}

// ARPExpect checks a host's ARP entry.
type ARPExpect struct {
	Host string `yaml:"host"`
	IP   string `yaml:"ip"`
	// MAC is "unchanged" (as before the last fault), "virtual" (the
	// interface's virtual MAC), a unit's name (that unit's burned-in MAC
	// on the interface), or a literal MAC.
	MAC string `yaml:"mac"`
}

// Scenario is a validated scenario with its lab.
type Scenario struct {
	Spec *ScenarioSpec
	File string
	Lab  *labfile.Lab
	// LabData is the lab file the scenario builds.
	LabData []byte
	pos     labfile.Positions
}

// validator collects a scenario file's problems, each at its field's line.
type validator struct {
	file  string
	pos   labfile.Positions
	probs labfile.Problems
	runs  map[string]bool // run steps named so far
}

func (v *validator) errf(field, format string, args ...any) {
	v.probs = append(v.probs, labfile.Problem{File: v.file, Line: v.pos.Line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// ScenarioNames lists the built-in scenarios.
func ScenarioNames() []string { return labs.Scenarios() }

// LoadScenario reads and validates a scenario (a built-in name or a path)
// and the lab it names. Every problem is reported with file, line and
// field before anything is built.
func LoadScenario(arg string) (*Scenario, error) {
	var data []byte
	file := arg
	if b, ok := labs.Scenario(arg); ok && !strings.ContainsAny(arg, "/.") {
		data, file = b, "builtin:scenarios/"+arg
	} else {
		b, err := os.ReadFile(arg)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%s: no such scenario file, and no built-in scenario of that name (built-in: %s)", arg, strings.Join(labs.Scenarios(), ", "))
			}
			return nil, err
		}
		data = b
	}
	return ParseScenario(file, data)
}

// ParseScenario parses and validates scenario bytes.
func ParseScenario(file string, data []byte) (*Scenario, error) {
	if len(data) > labfile.MaxFileSize {
		return nil, labfile.Problems{{File: file, Msg: "file too large"}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err == io.EOF {
		return nil, labfile.Problems{{File: file, Msg: "empty file; expected a scenario (name, lab, steps)"}}
	} else if err != nil {
		return nil, labfile.Problems{labfile.YAMLSyntaxProblem(file, data, err)}
	}
	if len(doc.Content) == 0 {
		return nil, labfile.Problems{{File: file, Msg: "empty file; expected a scenario (name, lab, steps)"}}
	}
	root := doc.Content[0]
	pos := labfile.Positions{}
	var probs labfile.Problems
	labfile.Walk(file, root, reflect.TypeOf(ScenarioSpec{}), "", pos, &probs)
	if len(probs) > 0 {
		return nil, probs
	}
	var spec ScenarioSpec
	if err := root.Decode(&spec); err != nil {
		return nil, labfile.Problems{labfile.YAMLProblem(file, err)}
	}
	v := &validator{file: file, pos: pos}
	sc := &Scenario{Spec: &spec, File: file, pos: pos}
	if spec.Name == "" {
		v.errf("name", "missing; expected a scenario name")
	}
	// The lab.
	if spec.Lab == "" {
		v.errf("lab", "missing; expected a built-in lab (%s) or a lab file", strings.Join(labs.Names(), ", "))
	} else {
		labArg := spec.Lab
		if strings.ContainsAny(labArg, "/.") && !filepath.IsAbs(labArg) && !strings.HasPrefix(file, "builtin:") {
			labArg = filepath.Join(filepath.Dir(file), labArg)
		}
		l, labData, err := lab.Resolve(labArg)
		if err != nil {
			var lp labfile.Problems
			if errors.As(err, &lp) {
				return nil, append(labfile.Problems{{File: file, Line: pos.Line("lab"), Field: "lab", Msg: "the lab has problems:"}}, lp...)
			}
			v.errf("lab", "%v", err)
		} else {
			sc.Lab, sc.LabData = l, labData
			switch spec.MACMode {
			case "":
			case labfile.MACVirtual, labfile.MACBurnedIn:
				l.Failover.MACMode = spec.MACMode
			default:
				v.errf("mac_mode", "%q is not a MAC mode (expected virtual or burned-in)", spec.MACMode)
			}
			if spec.HTTPReplication != nil {
				l.Failover.HTTPReplication = *spec.HTTPReplication
			}
			if spec.Replicate != nil {
				l.Failover.NoReplicate = labfile.NoReplicate(spec.Replicate)
			}
		}
	}
	if len(spec.Steps) == 0 {
		v.errf("steps", "missing; expected a list of steps (traffic, wait, fault, expect)")
	}
	traffics := map[string]bool{}
	v.steps(sc, "steps", spec.Steps, traffics)
	if len(v.probs) > 0 {
		return nil, v.probs
	}
	return sc, nil
}

func (v *validator) steps(sc *Scenario, path string, steps []*StepSpec, traffics map[string]bool) {
	for i, st := range steps {
		f := fmt.Sprintf("%s[%d]", path, i)
		if st == nil {
			v.errf(f, "empty step; expected one of wait, wait_for, expect, traffic, stop_traffic, fault, repeat, mark, chaos, run")
			continue
		}
		n := 0
		for _, set := range []bool{st.Wait != nil, st.WaitFor != nil, st.Expect != nil, st.Traffic != nil, st.StopTraffic != nil, st.Fault != nil, st.Repeat != nil, st.Mark != "", st.Chaos != nil, st.Run != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			v.errf(f, "a step does exactly one thing; found %d (expected one of wait, wait_for, expect, traffic, stop_traffic, fault, repeat, mark, chaos, run)", n)
			continue
		}
		switch {
		case st.WaitFor != nil:
			v.expect(sc, f+".wait_for", st.WaitFor, traffics)
			if st.WaitFor.Within == nil {
				v.errf(f+".wait_for", "needs within (how long to wait)")
			}
		case st.Expect != nil:
			v.expect(sc, f+".expect", st.Expect, traffics)
		case st.Traffic != nil:
			t := st.Traffic
			ff := f + ".traffic"
			if t.Name == "" {
				t.Name = t.Kind
			}
			if traffics[t.Name] {
				v.errf(ff+".name", "traffic %q is started twice", t.Name)
			}
			traffics[t.Name] = true
			if !slices.Contains(lab.TrafficKinds, t.Kind) {
				v.errf(ff+".kind", "%q is not a traffic kind (expected one of %s)", t.Kind, strings.Join(lab.TrafficKinds, ", "))
			}
			v.hostRef(sc, ff+".client", t.Client)
			v.hostRef(sc, ff+".server", t.Server)
		case st.StopTraffic != nil:
			for j, n := range st.StopTraffic {
				if n != "all" && !traffics[n] {
					v.errf(fmt.Sprintf("%s.stop_traffic[%d]", f, j), "unknown traffic %q (started so far: %s)", n, strings.Join(keys(traffics), ", "))
				}
			}
		case st.Fault != nil:
			v.fault(sc, f+".fault", st.Fault)
		case st.Run != nil:
			if v.runs == nil {
				v.runs = map[string]bool{}
			}
			v.run(sc, f+".run", st.Run, v.runs)
		case st.Repeat != nil:
			if st.Repeat.Times < 1 || st.Repeat.Times > 1000 {
				v.errf(f+".repeat.times", "%d is out of range (expected 1 to 1000)", st.Repeat.Times)
			}
			v.steps(sc, f+".repeat.steps", st.Repeat.Steps, traffics)
		case st.Chaos != nil:
			c := st.Chaos
			if c.Faults < 1 || c.Faults > 1000 {
				v.errf(f+".chaos.faults", "%d is out of range (expected 1 to 1000)", c.Faults)
			}
			for j, k := range c.Kinds {
				if !slices.Contains(ChaosKinds, k) {
					v.errf(fmt.Sprintf("%s.chaos.kinds[%d]", f, j), "%q is not a chaos fault (expected one of %s)", k, strings.Join(ChaosKinds, ", "))
				}
			}
		}
	}
}

func (v *validator) unitRef(sc *Scenario, field, name string) {
	if sc.Lab == nil || name == "" {
		return
	}
	if _, ok := sc.Lab.Unit(name); !ok {
		v.errf(field, "unknown unit %q (expected %s or %s)", name, sc.Lab.Units[0].Name, sc.Lab.Units[1].Name)
	}
}

func (v *validator) hostRef(sc *Scenario, field, name string) {
	if sc.Lab == nil {
		return
	}
	if name == "" {
		v.errf(field, "missing; expected a host")
		return
	}
	if _, ok := sc.Lab.Host(name); !ok {
		var hs []string
		for _, h := range sc.Lab.Hosts {
			hs = append(hs, h.Name)
		}
		v.errf(field, "unknown host %q (expected one of: %s)", name, strings.Join(hs, ", "))
	}
}

func (v *validator) linkRef(sc *Scenario, field, end string) {
	if sc.Lab == nil {
		return
	}
	node, iface, ok := strings.Cut(end, ":")
	if !ok {
		v.errf(field, "%q is not NODE:IFACE (e.g. fw-a:inside)", end)
		return
	}
	for _, lk := range sc.Lab.Links {
		for _, e := range []labfile.Endpoint{lk.A, lk.B} {
			if e.Node == node && e.Iface == iface {
				return
			}
			if e.Iface == "" && e.Node == node { // a switch port: named after what it faces
				other := lk.A
				if other == e {
					other = lk.B
				}
				if lab.SwitchPort(other) == iface {
					return
				}
			}
		}
	}
	v.errf(field, "no link end %q in lab %s", end, sc.Lab.Name)
}

func (v *validator) fault(sc *Scenario, f string, fs *FaultSpec) {
	n := 0
	check := func(set bool, fn func()) {
		if set {
			n++
			fn()
		}
	}
	check(fs.Kill != "", func() { v.unitRef(sc, f+".kill", fs.Kill) })
	check(fs.Freeze != "", func() { v.unitRef(sc, f+".freeze", fs.Freeze) })
	check(fs.Thaw != "", func() { v.unitRef(sc, f+".thaw", fs.Thaw) })
	check(fs.Restart != "", func() { v.unitRef(sc, f+".restart", fs.Restart) })
	check(fs.PowerOff != "", func() { v.unitRef(sc, f+".power_off", fs.PowerOff) })
	check(fs.LinkDown != "", func() { v.linkRef(sc, f+".link_down", fs.LinkDown) })
	check(fs.LinkUp != "", func() { v.linkRef(sc, f+".link_up", fs.LinkUp) })
	check(fs.CutFailover, func() {})
	check(fs.HealFailover, func() {})
	check(fs.Loss != nil, func() {
		v.linkRef(sc, f+".loss.link", fs.Loss.Link)
		if fs.Loss.Percent < 0 || fs.Loss.Percent > 100 {
			v.errf(f+".loss.percent", "%v is out of range (expected 0 to 100)", fs.Loss.Percent)
		}
	})
	check(fs.Clear != "", func() { v.linkRef(sc, f+".clear", fs.Clear) })
	check(fs.Failover != "", func() {
		if fs.Failover != "standby" {
			v.unitRef(sc, f+".failover", fs.Failover)
		}
	})
	if n != 1 {
		v.errf(f, "a fault step names exactly one fault; found %d", n)
	}
}

// stateNames are the failover states a unit reports, and Down for a unit
// whose process does not answer.
var stateNames = []string{"Active", "Standby Ready", "Bulk Sync", "Negotiation", "Failed", "Just Active", "Disabled", "Down"}

func (v *validator) expect(sc *Scenario, f string, e *ExpectSpec, traffics map[string]bool) {
	v.runExpect(f, e, v.runs)
	v.unitRef(sc, f+".active", e.Active)
	v.unitRef(sc, f+".standby_ready", e.StandbyReady)
	for u, s := range e.State {
		v.unitRef(sc, f+".state."+u, u)
		if !slices.Contains(stateNames, s) {
			v.errf(f+".state."+u, "%q is not a failover state (expected one of: %s)", s, strings.Join(stateNames, ", "))
		}
	}
	switch e.FailoverLink {
	case "", "up", "failed":
	default:
		v.errf(f+".failover_link", "%q: expected up or failed", e.FailoverLink)
	}
	switch e.StandbyHas {
	case "", "all-conns", "bridge-table", standbyHasPDP:
	default:
		v.errf(f+".standby_has", "%q: expected all-conns, bridge-table or %s", e.StandbyHas, standbyHasPDP)
	}
	for name, te := range e.Traffic {
		ff := f + ".traffic." + name
		if !traffics[name] {
			v.errf(ff, "unknown traffic %q (started so far: %s)", name, strings.Join(keys(traffics), ", "))
		}
		if te == nil {
			continue
		}
		for field, val := range map[string]string{"survived": te.Survived, "max_survived": te.MaxSurvived} {
			if val == "" {
				continue
			}
			if _, err := parsePercent(val); err != nil {
				v.errf(ff+"."+field, "%v", err)
			}
		}
	}
	for i, a := range e.ARP {
		ff := fmt.Sprintf("%s.arp[%d]", f, i)
		if a == nil {
			continue
		}
		v.hostRef(sc, ff+".host", a.Host)
		if _, msg := labfile.CheckAddr(a.IP); msg != "" {
			v.errf(ff+".ip", "%s", msg)
		}
		if a.MAC == "" {
			v.errf(ff+".mac", "missing; expected unchanged, virtual, a unit name or a MAC")
		}
	}
	for reason, cond := range e.Drops {
		if _, _, err := parseCount(cond); err != nil {
			v.errf(f+".drops."+reason, "%v", err)
		}
	}
	v.moduleExpect(f, e.Module)
	v.uauthExpect(f, e.UAuth)
}

func parsePercent(s string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || p < 0 || p > 100 {
		return 0, fmt.Errorf("%q is not a percentage (expected like 100%%)", s)
	}
	return p, nil
}

// parseCount reads a counter condition: "0", ">0", ">=5", "<3".
func parseCount(s string) (op string, n uint64, err error) {
	s = strings.TrimSpace(s)
	for _, o := range []string{">=", "<=", ">", "<", "="} {
		if rest, ok := strings.CutPrefix(s, o); ok {
			op, s = o, rest
			break
		}
	}
	if op == "" {
		op = "="
	}
	n, err = strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not a count condition (expected like 0, >0, >=5)", s)
	}
	return op, n, nil
}

// keys returns m's keys, sorted.
func keys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
