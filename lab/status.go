package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

// Status is what `falab status` shows of one lab.
type Status struct {
	Name      string       `json:"name"`
	Source    string       `json:"source"`
	Phase     string       `json:"phase"`
	CreatedAt time.Time    `json:"created_at"`
	Nodes     []NodeStatus `json:"nodes"`
	Units     []UnitStatus `json:"units"`
	// Problems lists what is off: a namespace missing, a unit dead.
	Problems []string `json:"problems,omitempty"`
}

// NodeStatus is one node of a running lab.
type NodeStatus struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Present   bool   `json:"present"`
	// Daemons are the host's daemons, in lab file order.
	Daemons []DaemonStatus `json:"daemons,omitempty"`
}

// DaemonStatus is one host daemon: PID 0 when it was never started.
type DaemonStatus struct {
	Name       string `json:"name"`
	PID        int    `json:"pid"`
	Alive      bool   `json:"alive"`
	PrivateRun bool   `json:"private_run,omitempty"`
}

// DaemonSummary says in a few words how node's daemons are, for the STATE
// column of `falab status`: ", charon pid 1234, ggsn pid 99 DEAD".
func (n NodeStatus) DaemonSummary() string {
	var b strings.Builder
	for _, d := range n.Daemons {
		switch {
		case d.PID == 0:
			fmt.Fprintf(&b, ", %s not started", d.Name)
		case d.Alive:
			fmt.Fprintf(&b, ", %s pid %d", d.Name, d.PID)
		default:
			fmt.Fprintf(&b, ", %s pid %d DEAD", d.Name, d.PID)
		}
	}
	return b.String()
}

// UnitStatus is one unit process.
type UnitStatus struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	PID   int    `json:"pid"`
	Alive bool   `json:"alive"`
}

// LoadRunning reads a running lab's record and the lab file it was built
// from (kept in its state directory).
func LoadRunning(name string) (*State, *labfile.Lab, error) {
	st, err := ReadState(name)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(Dir(name) + "/lab.yaml")
	if err != nil {
		return st, nil, fmt.Errorf("lab %s: its lab file copy is missing (%v); falab down %s cleans it", name, err, name)
	}
	l, err := labfile.Load(st.Source, data)
	if err != nil {
		return st, nil, err
	}
	if st.MACMode != "" {
		l.Failover.MACMode = st.MACMode
	}
	if st.HTTPReplication != nil {
		l.Failover.HTTPReplication = *st.HTTPReplication
	}
	if st.NoReplicate != nil {
		l.Failover.NoReplicate = st.NoReplicate
	}
	return st, l, nil
}

// GetStatus reports on a running lab.
func GetStatus(name string) (*Status, error) {
	st, l, err := LoadRunning(name)
	if st == nil {
		return nil, err
	}
	s := &Status{Name: st.Name, Source: st.Source, Phase: st.Phase, CreatedAt: st.CreatedAt}
	if err != nil {
		s.Problems = append(s.Problems, err.Error())
		return s, nil
	}
	present, err := topo.List(l.Namespace(""))
	if err != nil {
		return nil, err
	}
	kind := map[string]string{}
	for _, u := range l.Units {
		kind[u.Name] = labfile.KindUnit
	}
	for _, sw := range l.Switches {
		kind[sw.Name] = labfile.KindSwitch
	}
	for _, h := range l.Hosts {
		kind[h.Name] = labfile.KindHost
	}
	for _, n := range l.NodeNames() {
		ns := l.Namespace(n)
		ok := slices.Contains(present, ns)
		s.Nodes = append(s.Nodes, NodeStatus{Name: n, Kind: kind[n], Namespace: ns, Present: ok})
		if !ok {
			s.Problems = append(s.Problems, "namespace "+ns+" is missing")
		}
	}
	for i := range s.Nodes {
		s.Nodes[i].Daemons, s.Problems = daemonStatus(l, st, s.Nodes[i].Name, s.Problems)
	}
	for _, u := range l.Units {
		p, started := st.Units[u.Name]
		us := UnitStatus{Name: u.Name, Role: u.Role, PID: p.PID, Alive: p.Alive()}
		if started && !us.Alive && st.Phase == PhaseUp {
			s.Problems = append(s.Problems, fmt.Sprintf("unit %s (pid %d) is not running", u.Name, p.PID))
		}
		s.Units = append(s.Units, us)
	}
	return s, nil
}

// daemonStatus reports node's daemons from the record, adding a problem
// for each one that died while the lab is up. Liveness comes from
// /proc/PID/stat: a zombie is dead.
func daemonStatus(l *labfile.Lab, st *State, node string, problems []string) ([]DaemonStatus, []string) {
	h, ok := l.Host(node)
	if !ok {
		return nil, problems
	}
	var out []DaemonStatus
	for _, d := range h.Daemons {
		ds := DaemonStatus{Name: d.Name, PrivateRun: d.PrivateRun}
		for _, rec := range st.Daemons {
			if rec.Node == node && rec.Name == d.Name {
				ds.PID, ds.Alive = rec.Proc.PID, rec.Proc.Alive()
			}
		}
		if st.Phase == PhaseUp && !ds.Alive {
			problems = append(problems, fmt.Sprintf("daemon %s on %s (pid %d) is not running; see %s", d.Name, node, ds.PID, DaemonLog(l.Name, node, d.Name)))
		}
		out = append(out, ds)
	}
	return out, problems
}

// ErrNoLab says that no lab is running at all.
var ErrNoLab = errors.New("no lab is running (falab up starts one)")

// Pick chooses the lab a command means: the one named, or the only one
// running.
func Pick(name string) (string, error) {
	if name != "" {
		if _, err := ReadState(name); err != nil {
			return "", err
		}
		return name, nil
	}
	running, err := Running()
	if err != nil {
		return "", err
	}
	switch len(running) {
	case 0:
		return "", ErrNoLab
	case 1:
		return running[0], nil
	default:
		return "", fmt.Errorf("%d labs are running (%s): say which with --lab", len(running), strings.Join(running, ", "))
	}
}

// NodeNamespace returns the namespace of node in the running lab.
func NodeNamespace(labName, node string) (string, error) {
	st, err := ReadState(labName)
	if err != nil {
		return "", err
	}
	ns := labfile.NamespacePrefix + labName + "-" + node
	if !slices.Contains(st.Namespaces, ns) {
		var nodes []string
		for _, n := range st.Namespaces {
			nodes = append(nodes, strings.TrimPrefix(n, labfile.NamespacePrefix+labName+"-"))
		}
		return "", fmt.Errorf("lab %s has no node %q (nodes: %s)", labName, node, strings.Join(nodes, ", "))
	}
	return ns, nil
}

// ExecIn replaces this process with argv running inside namespace ns. It
// returns only on failure.
func ExecIn(ns string, argv []string, extraEnv ...string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	env := mergeEnv(os.Environ(), extraEnv...)
	return topo.Do(ns, func() error {
		// execve from this thread: the new program is born in ns.
		return syscall.Exec(path, argv, env)
	})
}
