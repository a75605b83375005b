package traffic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// pinger sends ICMP echo requests every --interval. Each request carries a
// Probe (session and 64-bit sequence) as its data, which the target echoes
// back unchanged: replies are matched by that, not by the 16-bit ICMP id
// and sequence (the kernel rewrites the id of unprivileged pings, and the
// 16-bit sequence wraps).
type pinger struct {
	cfg agentConfig
	log *slog.Logger
	ps  *probeSession
}

func newPinger(cfg agentConfig, log *slog.Logger) *pinger {
	return &pinger{cfg: cfg, log: log, ps: newProbeSession(cfg.grace, cfg.stall)}
}

// listenICMP opens a raw ICMP socket (root or CAP_NET_RAW), or else an
// unprivileged ping socket (net.ipv4.ping_group_range).
func listenICMP() (conn *icmp.PacketConn, privileged bool, err error) {
	conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err == nil {
		return conn, true, nil
	}
	conn, err2 := icmp.ListenPacket("udp4", "0.0.0.0")
	if err2 == nil {
		return conn, false, nil
	}
	return nil, false, fmt.Errorf("ping: no ICMP socket: raw: %v; unprivileged: %v", err, err2)
}

func (p *pinger) run(ctx context.Context) error {
	defer func() {
		p.ps.mu.Lock()
		p.ps.finished = true
		p.ps.mu.Unlock()
	}()
	ip := net.ParseIP(p.cfg.target)
	if ip == nil {
		ipa, err := net.ResolveIPAddr("ip4", p.cfg.target)
		if err != nil {
			p.ps.fail(err)
			return fmt.Errorf("ping: target %q: %w", p.cfg.target, err)
		}
		ip = ipa.IP
	}
	if ip.To4() == nil {
		err := fmt.Errorf("ping: target %s is not IPv4", ip)
		p.ps.fail(err)
		return err
	}
	conn, privileged, err := listenICMP()
	if err != nil {
		p.ps.fail(err)
		return err
	}
	var dst net.Addr = &net.IPAddr{IP: ip}
	if !privileged {
		dst = &net.UDPAddr{IP: ip}
	}
	p.ps.mu.Lock()
	p.ps.remote = ip.String()
	p.ps.mu.Unlock()

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		p.read(conn)
	}()
	id := os.Getpid() & 0xffff
	data := make([]byte, ProbeLen)
	send := func() {
		now := time.Now()
		seq := p.ps.next(now)
		_ = Probe{Kind: ProbeRequest, Session: p.ps.session, Seq: seq, SentUnix: now.UnixNano()}.marshalTo(data)
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: int(seq & 0xffff), Data: data}}
		b, err := msg.Marshal(nil)
		if err == nil {
			_, err = conn.WriteTo(b, dst)
		}
		if err != nil {
			p.log.Debug("ping write", "err", err)
		}
	}
	sendEvery(ctx, p.cfg.interval, send)
	grace := time.NewTimer(p.cfg.grace)
	<-grace.C
	_ = conn.Close()
	<-readerDone
	return nil
}

func (p *pinger) read(conn *icmp.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, _, err := conn.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		seq, ok := p.parseReply(buf[:n])
		if ok {
			p.ps.echo(seq, now)
		}
	}
}

// parseReply extracts the sequence of an echo reply of this session.
func (p *pinger) parseReply(b []byte) (uint64, bool) {
	m, err := icmp.ParseMessage(1, b) // 1: ICMPv4
	if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
		return 0, false
	}
	echo, ok := m.Body.(*icmp.Echo)
	if !ok {
		return 0, false
	}
	var pr Probe
	if pr.UnmarshalBinary(echo.Data) != nil || pr.Session != p.ps.session {
		return 0, false
	}
	return pr.Seq, true
}

func (p *pinger) snapshot(now time.Time) Report { return p.ps.report(now) }
