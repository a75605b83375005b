package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/falab/falab/api"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

func init() { startUnits = startUnitProcs }

// unitReadyTimeout bounds how long up waits for a unit's API to answer.
const unitReadyTimeout = 10 * time.Second

// UnitConfig resolves lab l into the config of one unit.
func UnitConfig(l *labfile.Lab, name string, keyFile string) (*api.UnitConfig, error) {
	u, ok := l.Unit(name)
	if !ok {
		return nil, fmt.Errorf("lab %s has no unit %q", l.Name, name)
	}
	peer := l.Peer(name)
	c := &api.UnitConfig{
		Lab: l.Name, Name: u.Name, Peer: peer.Name, Role: u.Role,
		FailoverInterface: l.Failover.Link.Interface,
		UnitPoll:          l.Failover.UnitPoll, UnitHold: l.Failover.UnitHold,
		InterfacePoll: l.Failover.InterfacePoll, InterfaceHold: l.Failover.InterfaceHold,
		NegotiationWindow: l.Failover.NegotiationWindow,
		MACMode:           l.Failover.MACMode, HTTPReplication: l.Failover.HTTPReplication,
		NoReplicate:        l.Failover.NoReplicate,
		KeyFile:            keyFile,
		Socket:             filepath.Join(Dir(l.Name), u.Name+".sock"),
		Log:                filepath.Join(Dir(l.Name), u.Name+".log"),
		NoIPsecReplication: l.Failover.NoIPsecReplication,
		Offloads:           l.Offloads,
		CPUs:               u.CPUs,
	}
	c.LocalAddr, c.PeerAddr = linkAddrs(l.Failover.Link, u.Role)
	if sl := l.Failover.StateLink; sl != nil {
		c.StateInterface = sl.Interface
		c.StateLocalAddr, c.StatePeerAddr = linkAddrs(*sl, u.Role)
	}
	c.Firewall = l.FirewallConfig(u)
	for _, fi := range l.Firewall.Interfaces {
		if fi.Monitor {
			c.Monitored = append(c.Monitored, fi.Name)
		}
	}
	return c, nil
}

func linkAddrs(fl labfile.FailoverLink, role string) (local, peer netip.Addr) {
	if role == "primary" {
		return fl.PrimaryAddress.Addr(), fl.SecondaryAddress.Addr()
	}
	return fl.SecondaryAddress.Addr(), fl.PrimaryAddress.Addr()
}

// writeKey stores the failover key for the units (mode 0600): the lab
// file's key, or a random one made for this lab.
func writeKey(l *labfile.Lab) (string, error) {
	path := filepath.Join(Dir(l.Name), "failover.key")
	key, err := FailoverKey(l.Name, l.Failover.Key)
	if err != nil {
		return "", err
	}
	return path, api.WriteKeyFile(path, key)
}

// FailoverKey resolves a lab file's failover.key into the units' key: 64
// hex digits are the key itself; any other text is a passphrase, stretched
// with Argon2id; none means a random key for this run of the lab.
//
// The hellos go in clear and every sealed frame carries a MAC under the
// key, so anyone who sees the links can test guesses of a passphrase
// offline: a single hash would let them test billions a second, Argon2id
// (64 MiB per guess) a few. The salt is fixed per lab so that both units,
// and every `falab up` of the lab, get the same key, and the same
// passphrase in two labs gives two keys. It runs once, in `falab up`; the
// units receive the derived key.
func FailoverKey(labName, text string) (api.Key, error) {
	switch {
	case text == "":
		return api.NewKey()
	case labfile.IsRawKey(text):
		return api.ParseKey(text)
	}
	return PassphraseKey(labName, text), nil
}

// Argon2id parameters for a passphrase: RFC 9106's second recommended
// option (3 passes over 64 MiB), about 0.1-0.3 s once per `falab up`.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 4
)

// PassphraseKey derives a lab's failover key from a passphrase.
func PassphraseKey(labName, passphrase string) api.Key {
	salt := []byte("falab failover key\x00" + labName)
	return api.Key(argon2.IDKey([]byte(passphrase), salt, argonTime, argonMemory, argonThreads, api.KeyLen))
}

// startUnitProcs writes each unit's config and starts `falab unit` inside
// the unit's namespace, detached from the terminal, logging to its file;
// then waits until both APIs answer.
func startUnitProcs(ctx context.Context, l *labfile.Lab, st *State, opt UpOptions) error {
	exe := opt.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	keyFile, err := writeKey(l)
	if err != nil {
		return fmt.Errorf("failover key: %w", err)
	}
	for _, u := range l.Units {
		cfg, err := UnitConfig(l, u.Name, keyFile)
		if err != nil {
			return err
		}
		cfgPath := filepath.Join(Dir(l.Name), u.Name+".json")
		if err := api.WriteUnitConfig(cfgPath, cfg); err != nil {
			return err
		}
		p, err := spawnIn(l.Namespace(u.Name), "unit "+u.Name, cfg.Log, exe, "unit", "--config", cfgPath)
		if err != nil {
			return fmt.Errorf("start unit %s: %w", u.Name, err)
		}
		st.Units[u.Name] = p
		// Record each PID as soon as it exists, so that a crash of up
		// leaves no unit unaccounted for.
		if err := WriteState(st); err != nil {
			return err
		}
	}
	for _, u := range l.Units {
		if err := waitReady(ctx, st.Units[u.Name], filepath.Join(Dir(l.Name), u.Name+".sock"), filepath.Join(Dir(l.Name), u.Name+".log")); err != nil {
			return fmt.Errorf("unit %s: %w", u.Name, err)
		}
	}
	return nil
}

// spawnIn starts argv inside namespace ns as a detached process (its own
// session, stdin from /dev/null, output to logPath) and returns its record.
// The fork happens on a thread switched into ns, so the child and every
// thread it ever makes live in ns.
func spawnIn(ns, name, logPath, exe string, args ...string) (Proc, error) {
	cmd := exec.Command(exe, args...)
	return startDetached(cmd, name, logPath, func() error { return topo.Do(ns, cmd.Start) })
}

// startDetached starts cmd through start (which forks it from a thread in
// the right namespaces) in its own session, stdin from /dev/null and
// output appended to logPath, and returns its record.
func startDetached(cmd *exec.Cmd, name, logPath string, start func() error) (Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return Proc{}, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := start(); err != nil {
		return Proc{}, err
	}
	pid := cmd.Process.Pid
	// The child is detached; we never Wait for it, so release it.
	_ = cmd.Process.Release()
	st, err := StartTimeOf(pid)
	if err != nil {
		return Proc{}, fmt.Errorf("%s exited at once; see %s", name, logPath)
	}
	return Proc{Name: name, PID: pid, StartTime: st}, nil
}

// waitReady waits until the unit's API socket accepts a connection, or the
// unit dies (then the tail of its log says why).
func waitReady(ctx context.Context, p Proc, sock, logPath string) error {
	deadline := time.Now().Add(unitReadyTimeout)
	for {
		c, err := net.DialTimeout("unix", sock, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if !p.Alive() {
			return fmt.Errorf("exited during start-up:\n%s", logTail(logPath, 10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("API socket %s not ready after %v:\n%s", sock, unitReadyTimeout, logTail(logPath, 10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "  (no log)"
		}
		return "  " + err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
