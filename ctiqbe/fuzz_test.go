package ctiqbe

import (
	"reflect"
	"testing"
)

// FuzzEngine feeds segments cut from the input to an engine holding a
// registered session with a call and a pending MakeCall. Each input byte
// pair (d, n) starts a segment: d's low bit is the direction, bit 1 a
// sequence number jump, n the length. Nothing may panic; a dropped
// segment must open and close nothing and change no state; every pinhole
// opened is well formed; the table stays within its bounds.
func FuzzEngine(f *testing.F) {
	seg := func(fromPhone bool, b []byte) []byte {
		d := byte(1)
		if fromPhone {
			d = 0
		}
		return append([]byte{d, byte(len(b))}, b...)
	}
	var valid []byte
	valid = append(valid, seg(true, enc(f, mHeartbeat, mHangUp))...)
	valid = append(valid, seg(false, enc(f, mHeartbeatOK, mHangUpAck))...)
	valid = append(valid, seg(true, enc(f, mMakeCall))...)
	valid = append(valid, seg(false, enc(f, Message{Type: TypeCallSetup, CallID: 9, MediaAddr: managerAddr, MediaPort: 20000}))...)
	valid = append(valid, seg(true, enc(f, mUnregister, mRegister))...)
	f.Add(valid)
	f.Add(seg(true, []byte{0, 8, 3, 0, 0, 0, 0, 0, 0, 12}))
	f.Add([]byte{2, 4, 0, 8, 3, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		e := NewEngine(Config{MaxConns: 4})
		w := newWire(t, e)
		setUpCall(w)
		w.send(true, mMakeCall)
		for len(in) >= 2 {
			d, n := in[0], int(in[1])
			in = in[2:]
			n = min(n, len(in))
			payload := in[:n]
			in = in[n:]
			fromPhone := d&1 == 0
			if d&2 != 0 {
				w.seq[dirOf(fromPhone)] += uint32(d >> 2)
			}
			before := snapshot(e)
			r := w.segment(fromPhone, payload)
			if r.Drop {
				if len(r.Open) != 0 || len(r.Close) != 0 {
					t.Fatalf("dropped (%s) yet opened %v closed %v", r.Reason, r.Open, r.Close)
				}
				if r.Reason != ReasonTableFull && !reflect.DeepEqual(before, snapshot(e)) {
					t.Fatalf("dropped (%s) yet the state changed", r.Reason)
				}
				if r.Reason == ReasonNone || r.Reason.String() == "ctiqbe-unknown" {
					t.Fatalf("dropped with reason %d", r.Reason)
				}
			}
			for _, p := range r.Open {
				if p.Proto != ProtoUDP || p.Dst == ([4]byte{}) || p.DstPort == 0 || p.Timeout <= 0 {
					t.Fatalf("ill-formed pinhole %+v", p)
				}
			}
		}
		for _, s := range e.Sessions() {
			if len(s.Calls) > MaxCallsPerSession {
				t.Fatalf("%d calls in a session", len(s.Calls))
			}
		}
		_ = e.Show()
	})
}
