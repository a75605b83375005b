package scenario

import (
	"testing"
	"time"

	"github.com/falab/falab/api"
)

// TestOverlap: two units' reports prove two forwarding at once only when
// their intervals [forwarding since, taken at] share an instant. Reports
// taken a few milliseconds apart across a takeover do not.
func TestOverlap(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	st := func(since, at int) *api.Status {
		return &api.Status{Forwarding: true, ForwardingSince: ms(since), At: ms(at)}
	}
	tests := []struct {
		name string
		a, b *api.Status
		want bool
	}{
		{"old active answered before the new one began", st(0, 794), st(795, 796), false},
		{"both forwarding at 800", st(0, 800), st(795, 801), true},
		{"touching at one instant", st(0, 795), st(795, 799), true},
		{"no interval given", &api.Status{Forwarding: true, At: ms(5)}, st(0, 10), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := overlap(tt.a, tt.b); got != tt.want {
				t.Errorf("overlap = %v, want %v", got, tt.want)
			}
			if got := overlap(tt.b, tt.a); got != tt.want {
				t.Errorf("overlap reversed = %v, want %v", got, tt.want)
			}
		})
	}
}
