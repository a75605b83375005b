package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/traffic"
)

// Traffic describes one traffic generator between two hosts of a lab: a
// server agent in the server's namespace and a client agent in the
// client's, both `falab agent` processes that write JSON reports.
type Traffic struct {
	Name      string        `json:"name" yaml:"name"`
	Kind      string        `json:"kind" yaml:"kind"` // tcp-stream, udp-probe, http, ping, iperf3
	Client    string        `json:"client" yaml:"client"`
	Server    string        `json:"server" yaml:"server"`
	Flows     int           `json:"flows,omitempty" yaml:"flows"`
	Direction string        `json:"direction,omitempty" yaml:"direction"`
	Rate      int64         `json:"rate,omitempty" yaml:"rate"`
	Interval  time.Duration `json:"interval,omitempty" yaml:"-"`
	Port      int           `json:"port,omitempty" yaml:"port"`
	// Target is the address the client connects to; default: the
	// server's first address (a static NAT's mapped address for an
	// outside-to-inside flow).
	Target string `json:"target,omitempty" yaml:"target"`
}

// TrafficKinds are the generators falab has. iperf3 is load, not a check:
// a real iperf3 client saturating the data path (TCP, one stream, as long
// as it runs); it writes no report falab reads.
var TrafficKinds = []string{traffic.KindTCPStream, traffic.KindUDPProbe, traffic.KindHTTP, "ping", KindIperf3, traffic.KindSoftphone}

// serverKind is the agent kind a traffic kind's server runs: a softphone
// talks to a callmanager (the CTIQBE lab model); the others to their own.
func serverKind(kind string) string {
	if kind == traffic.KindSoftphone {
		return traffic.KindCallManager
	}
	return kind
}

// KindIperf3 is the saturating load generator: the iperf3 program itself.
const KindIperf3 = "iperf3"

// TrafficReport is the latest report of a traffic generator's two ends.
type TrafficReport struct {
	Traffic Traffic         `json:"traffic"`
	Client  *traffic.Report `json:"client,omitempty"`
	Server  *traffic.Report `json:"server,omitempty"`
	Running bool            `json:"running"`
	// Faults are the generator's figures across each fault of the lab's
	// timeline (AttachFaults; figures.go).
	Faults []FaultTraffic `json:"faults,omitempty"`
}

// trafficPath is the file holding the latest report of a generator's
// agent: the agent writes it over with each report (--report-file), so it
// stays one report long however long the traffic runs.
func trafficPath(labName, name, role string) string {
	return filepath.Join(Dir(labName), "traffic-"+name+"-"+role+".jsonl")
}

// trafficLog is where an agent's own output (its log, a crash) goes, apart
// from its reports.
func trafficLog(labName, name, role string) string {
	return filepath.Join(Dir(labName), "traffic-"+name+"-"+role+".log")
}

// StartTraffic starts a generator's server (unless ping) and client, and
// records them in the lab's state so `down` stops them.
func StartTraffic(ctx context.Context, labName string, t Traffic) error {
	st, l, err := LoadRunning(labName)
	if err != nil {
		return err
	}
	if t.Name == "" {
		t.Name = t.Kind
	}
	if !labfile.ValidName(t.Name) {
		return fmt.Errorf("traffic name %q: expected lower-case letters, digits and dashes", t.Name)
	}
	if !slices.Contains(TrafficKinds, t.Kind) {
		return fmt.Errorf("traffic kind %q: expected one of %s", t.Kind, strings.Join(TrafficKinds, ", "))
	}
	for _, p := range st.Procs {
		if p.Name == "traffic "+t.Name+" client" && p.Alive() {
			return fmt.Errorf("traffic %s is already running (falab traffic stop %s)", t.Name, t.Name)
		}
	}
	if _, ok := l.Host(t.Client); !ok {
		return fmt.Errorf("traffic %s: no host %q", t.Name, t.Client)
	}
	server, ok := l.Host(t.Server)
	if !ok {
		return fmt.Errorf("traffic %s: no host %q", t.Name, t.Server)
	}
	if t.Target == "" {
		t.Target = server.Interfaces[0].Addr.Addr().String()
	}
	if t.Kind == KindIperf3 {
		return startIperf3(ctx, st, l, labName, t)
	}
	exe, err := executable()
	if err != nil {
		return err
	}
	// A report left from an earlier run of this name must not pass for
	// the new agents' first.
	for _, role := range []string{"server", "client"} {
		_ = os.Remove(trafficPath(labName, t.Name, role))
	}
	common := func(role string) []string {
		return []string{"--report-every", "100ms", "--report-file", trafficPath(labName, t.Name, role)}
	}
	var serverArgs, clientArgs []string
	switch t.Kind {
	case "ping":
		clientArgs = append([]string{"agent", "ping", "--role", "client", "--target", t.Target}, common("client")...)
		if t.Interval > 0 {
			clientArgs = append(clientArgs, "--interval", t.Interval.String())
		}
	default:
		serverArgs = append([]string{"agent", serverKind(t.Kind), "--role", "server"}, common("server")...)
		target := t.Target
		if t.Port != 0 {
			serverArgs = append(serverArgs, "--port", strconv.Itoa(t.Port))
			target = fmt.Sprintf("%s:%d", t.Target, t.Port)
		}
		clientArgs = append([]string{"agent", t.Kind, "--role", "client", "--target", target}, common("client")...)
		if t.Flows > 0 {
			clientArgs = append(clientArgs, "--flows", strconv.Itoa(t.Flows))
		}
		if t.Direction != "" {
			clientArgs = append(clientArgs, "--direction", t.Direction)
		}
		if t.Rate > 0 {
			clientArgs = append(clientArgs, "--rate", strconv.FormatInt(t.Rate, 10))
		}
		if t.Interval > 0 {
			clientArgs = append(clientArgs, "--interval", t.Interval.String())
		}
	}
	if serverArgs != nil {
		p, err := spawnIn(l.Namespace(t.Server), "traffic "+t.Name+" server", trafficLog(labName, t.Name, "server"), exe, serverArgs...)
		if err != nil {
			return fmt.Errorf("traffic %s server: %w", t.Name, err)
		}
		st.Procs = append(st.Procs, p)
		if err := WriteState(st); err != nil {
			return err
		}
		// The client must not race the server's listen: wait for its
		// first report, written once it listens.
		if err := waitForReport(ctx, p, trafficPath(labName, t.Name, "server"), trafficLog(labName, t.Name, "server")); err != nil {
			return fmt.Errorf("traffic %s server: %w", t.Name, err)
		}
	}
	p, err := spawnIn(l.Namespace(t.Client), "traffic "+t.Name+" client", trafficLog(labName, t.Name, "client"), exe, clientArgs...)
	if err != nil {
		return fmt.Errorf("traffic %s client: %w", t.Name, err)
	}
	st.Procs = append(st.Procs, p)
	if err := WriteState(st); err != nil {
		return err
	}
	if err := writeTrafficSpec(labName, t); err != nil {
		return err
	}
	RecordEvent(labName, "traffic", fmt.Sprintf("traffic %s started: %s %s -> %s (%s)", t.Name, t.Kind, t.Client, t.Server, t.Target))
	return nil
}

// startIperf3 starts `iperf3 -s` in the server's namespace and a client
// that sends to it until stopped, both recorded so `down` stops them.
func startIperf3(ctx context.Context, st *State, l *labfile.Lab, labName string, t Traffic) error {
	exe, err := exec.LookPath("iperf3")
	if err != nil {
		return fmt.Errorf("traffic %s: iperf3 is not installed (apt-get install iperf3): %w", t.Name, err)
	}
	port := t.Port
	if port == 0 {
		port = 5201
	}
	srvLog := trafficPath(labName, t.Name, "server")
	srv, err := spawnIn(l.Namespace(t.Server), "traffic "+t.Name+" server", srvLog, exe, "-s", "-p", strconv.Itoa(port), "--forceflush")
	if err != nil {
		return fmt.Errorf("traffic %s server: %w", t.Name, err)
	}
	st.Procs = append(st.Procs, srv)
	if err := WriteState(st); err != nil {
		return err
	}
	// iperf3 says when it listens (flushed: its output is a file); the
	// client must not race that.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logTail(srvLog, 5), "Server listening") {
		if !srv.Alive() || time.Now().After(deadline) {
			return fmt.Errorf("traffic %s: iperf3 server not listening:\n%s", t.Name, logTail(srvLog, 5))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	args := []string{"-c", t.Target, "-p", strconv.Itoa(port), "-t", "86400", "-i", "10", "--forceflush"}
	if t.Rate > 0 {
		args = append(args, "-b", strconv.FormatInt(t.Rate*8, 10))
	}
	cli, err := spawnIn(l.Namespace(t.Client), "traffic "+t.Name+" client", trafficPath(labName, t.Name, "client"), exe, args...)
	if err != nil {
		return fmt.Errorf("traffic %s client: %w", t.Name, err)
	}
	st.Procs = append(st.Procs, cli)
	if err := WriteState(st); err != nil {
		return err
	}
	if err := writeTrafficSpec(labName, t); err != nil {
		return err
	}
	RecordEvent(labName, "traffic", fmt.Sprintf("traffic %s started: iperf3 %s -> %s (%s:%d), saturating", t.Name, t.Client, t.Server, t.Target, port))
	return nil
}

// waitForReport waits for the agent p's first report in path; its log
// says why when none comes.
func waitForReport(ctx context.Context, p Proc, path, log string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if rep, _ := lastReport(path); rep != nil {
			return nil
		}
		if !p.Alive() {
			return fmt.Errorf("exited at once:\n%s", logTail(log, 5))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no report after 5s:\n%s", logTail(log, 5))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func specPath(labName, name string) string {
	return filepath.Join(Dir(labName), "traffic-"+name+".spec")
}

func writeTrafficSpec(labName string, t Traffic) error {
	return os.WriteFile(specPath(labName, t.Name), []byte(strings.Join([]string{t.Name, t.Kind, t.Client, t.Server, t.Target}, "\n")), 0o600)
}

// StopTraffic stops generators (all when names is empty) with SIGTERM so
// each writes its final report, and waits for them to end.
func StopTraffic(labName string, names ...string) error {
	st, err := ReadState(labName)
	if err != nil {
		return err
	}
	// Clients first, then servers: a client stopping is a clean end of
	// its flows, while a server vanishing first would look like resets.
	var stopping []Proc
	for _, role := range []string{" client", " server"} {
		var batch []Proc
		for _, p := range st.Procs {
			name, ok := strings.CutPrefix(p.Name, "traffic ")
			if !ok || !strings.HasSuffix(name, role) {
				continue
			}
			name = strings.TrimSuffix(name, role)
			if len(names) > 0 && !slices.Contains(names, name) {
				continue
			}
			if p.Alive() {
				_ = syscall.Kill(p.PID, syscall.SIGTERM)
				batch = append(batch, p)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, p := range batch {
			for p.Alive() && time.Now().Before(deadline) {
				reap(p.PID)
				time.Sleep(5 * time.Millisecond)
			}
			if p.Alive() {
				_ = p.Kill(time.Second)
			}
		}
		stopping = append(stopping, batch...)
	}
	if len(stopping) > 0 {
		RecordEvent(labName, "traffic", fmt.Sprintf("traffic stopped (%d processes)", len(stopping)))
	}
	return nil
}

// TrafficReports returns the latest report of every generator of the lab.
func TrafficReports(labName string) ([]TrafficReport, error) {
	st, err := ReadState(labName)
	if err != nil {
		return nil, err
	}
	specs, _ := filepath.Glob(filepath.Join(Dir(labName), "traffic-*.spec"))
	var out []TrafficReport
	for _, sp := range specs {
		b, err := os.ReadFile(sp)
		if err != nil {
			continue
		}
		f := strings.Split(string(b), "\n")
		if len(f) < 5 {
			continue
		}
		t := Traffic{Name: f[0], Kind: f[1], Client: f[2], Server: f[3], Target: f[4]}
		r := TrafficReport{Traffic: t}
		r.Client, _ = lastReport(trafficPath(labName, t.Name, "client"))
		r.Server, _ = lastReport(trafficPath(labName, t.Name, "server"))
		for _, p := range st.Procs {
			if p.Name == "traffic "+t.Name+" client" && p.Alive() {
				r.Running = true
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// lastReport reads the last complete JSON report line of an agent's file
// (the only one, since agents write it over; the last of many in a file
// appended by hand).
func lastReport(path string) (*traffic.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// Reports can be long (one detail row per flow): read the tail.
	const tail = 256 << 10
	off := max(fi.Size()-tail, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	lines := bytes.Split(bytes.TrimRight(buf, "\n"), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if rep, err := traffic.ParseReport(lines[i]); err == nil {
			return &rep, nil
		}
	}
	return nil, nil
}
