package traffic

import (
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

func BenchmarkPatternFill(b *testing.B) {
	buf := make([]byte, 64<<10)
	p := NewPattern(1)
	b.SetBytes(int64(len(buf)))
	var off uint64
	for b.Loop() {
		p.Fill(buf, off)
		off += uint64(len(buf))
	}
}

func BenchmarkStreamVerifierWrite(b *testing.B) {
	const chunk = 32 << 10
	stream := make([]byte, 1<<20)
	NewPattern(5).Fill(stream, 0)
	v := NewStreamVerifier(5)
	b.SetBytes(chunk)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Feed the stream in order; start a new verifier at the end of the
		// prepared megabyte so every byte checks against its real offset.
		if i+chunk > len(stream) {
			v, i = NewStreamVerifier(5), 0
		}
		if err := v.Write(stream[i:i+chunk], t0); err != nil {
			b.Fatal(err)
		}
		i += chunk
	}
}

func BenchmarkSeqTracker(b *testing.B) {
	tr := NewSeqTracker(100 * time.Millisecond)
	at := t0
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Millisecond)
		seq := tr.Next(at)
		tr.Received(seq, at)
		if seq%100 == 0 {
			tr.Stats(at)
		}
	}
	b.ReportMetric(float64(len(tr.seen)*8)/float64(tr.Sent()), "bitmap-B/probe")
}

// FuzzPingReply: whatever arrives on the ICMP socket, parseReply neither
// panics nor accepts a reply of another session.
func FuzzPingReply(f *testing.F) {
	p := &pinger{ps: newProbeSession(time.Second, time.Second)}
	p.ps.session = 77
	data, _ := Probe{Kind: ProbeRequest, Session: 77, Seq: 70000}.MarshalBinary()
	reply, _ := (&icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 1, Seq: 4464, Data: data}}).Marshal(nil)
	f.Add(reply)
	other, _ := Probe{Kind: ProbeRequest, Session: 78, Seq: 1}.MarshalBinary()
	reply2, _ := (&icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 1, Seq: 1, Data: other}}).Marshal(nil)
	f.Add(reply2)
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, ok := p.parseReply(b)
		if !ok {
			return
		}
		m, err := icmp.ParseMessage(1, b)
		if err != nil {
			t.Fatalf("accepted a message icmp cannot parse: %v", err)
		}
		var pr Probe
		if err := pr.UnmarshalBinary(m.Body.(*icmp.Echo).Data); err != nil || pr.Session != 77 || pr.Seq != seq {
			t.Fatalf("accepted seq %d from %+v (%v)", seq, pr, err)
		}
	})
}

func TestPingParseReply(t *testing.T) {
	p := &pinger{ps: newProbeSession(time.Second, time.Second)}
	p.ps.session = 77
	mk := func(typ icmp.Type, session uint64) []byte {
		data, _ := Probe{Kind: ProbeRequest, Session: session, Seq: 70000}.MarshalBinary()
		b, _ := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: 1, Seq: 4464, Data: data}}).Marshal(nil)
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantSeq uint64
		wantOK  bool
	}{
		{"our reply: the 64-bit seq, not the ICMP one", mk(ipv4.ICMPTypeEchoReply, 77), 70000, true},
		{"another session", mk(ipv4.ICMPTypeEchoReply, 78), 0, false},
		{"our own request (raw sockets see it)", mk(ipv4.ICMPTypeEcho, 77), 0, false},
		{"garbage", []byte{1, 2, 3}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq, ok := p.parseReply(tc.in)
			if seq != tc.wantSeq || ok != tc.wantOK {
				t.Errorf("parseReply = %d, %v; want %d, %v", seq, ok, tc.wantSeq, tc.wantOK)
			}
		})
	}
}
