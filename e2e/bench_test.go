package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// genLab writes a lab of n hosts: half on the inside switch, half outside.
func genLab(t testing.TB, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: gen%d\nnodes:\n  fw-a: {kind: unit, role: primary}\n  fw-b: {kind: unit, role: secondary}\n  sw-in: {kind: switch}\n  sw-out: {kind: switch}\n", n)
	var links []string
	for i := 0; i < n; i++ {
		side, net, sw := "in", 1, "sw-in"
		if i%2 == 1 {
			side, net, sw = "out", 2, "sw-out"
		}
		name := fmt.Sprintf("h%s%d", side, i)
		fmt.Fprintf(&b, "  %s: {kind: host, interfaces: {eth0: {address: 198.18.%d.%d/24}}, gateway: 198.18.%d.1}\n", name, net, 10+i, net)
		links = append(links, fmt.Sprintf("  - endpoints: [%s:eth0, %s]\n", name, sw))
	}
	b.WriteString("links:\n")
	for _, l := range links {
		b.WriteString(l)
	}
	b.WriteString(`  - endpoints: [fw-a:inside, sw-in]
  - endpoints: [fw-b:inside, sw-in]
  - endpoints: [fw-a:outside, sw-out]
  - endpoints: [fw-b:outside, sw-out]
  - endpoints: [fw-a:failover, fw-b:failover]
firewall:
  interfaces:
    - {name: inside, security_level: 100, address: 198.18.1.1/24, standby_address: 198.18.1.2}
    - {name: outside, security_level: 0, address: 198.18.2.1/24, standby_address: 198.18.2.2}
  nat:
    - {type: dynamic-pat, real_interface: inside, real: 198.18.1.0/24, mapped_interface: outside}
failover:
  link: {primary_address: 198.19.255.1/30, secondary_address: 198.19.255.2/30}
`)
	p := filepath.Join(t.TempDir(), fmt.Sprintf("gen%d.yaml", n))
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// BenchmarkLabUpDown times `falab up --detach` and `falab down` of whole
// labs, as a user runs them (process start included), beside the targets.
func BenchmarkLabUpDown(b *testing.B) {
	needRoot(b)
	for _, c := range []struct {
		name           string
		lab            func() string
		upTarget, down time.Duration
	}{
		{"default", func() string { return "default" }, time.Second, 500 * time.Millisecond},
		{"hosts50", func() string { return genLab(b, 50) }, 5 * time.Second, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			lab := c.lab()
			runDir := b.TempDir()
			var upTotal, downTotal time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				mustFalab(b, runDir, "up", lab, "--detach")
				t1 := time.Now()
				downRecorded(b, runDir)
				upTotal += t1.Sub(t0)
				downTotal += time.Since(t1)
			}
			up := upTotal / time.Duration(b.N)
			down := downTotal / time.Duration(b.N)
			b.ReportMetric(float64(up.Microseconds())/1000, "ms/up")
			b.ReportMetric(float64(down.Microseconds())/1000, "ms/down")
			fmt.Printf("lab %-8s up %7.1f ms (target < %v)   down %7.1f ms%s\n", c.name,
				float64(up.Microseconds())/1000, c.upTarget, float64(down.Microseconds())/1000, target(c.down))
		})
	}
}

func target(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf(" (target < %v)", d)
}
