package capture

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkCaptureVeth measures a live capture on b:e0 while a sends
// b.N frames on the veth as fast as one packet socket can: frames per
// second written to the pcapng stream (io.Discard), and the share the
// ring dropped (the writer fell behind). Frames the veth's backlog dropped before any
// socket saw them count in neither; "seen%" is what reached the capture.
func BenchmarkCaptureVeth(b *testing.B) {
	bn := newBench(b)
	for _, size := range []int{64, 1514} {
		b.Run(fmt.Sprintf("frame=%d", size), func(b *testing.B) {
			c, err := Open(bn.b, "e0", Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan Stats)
			go func() {
				st, _ := c.Run(ctx, io.Discard)
				done <- st
			}()
			frame := testFrame(size, 0)
			fd, sa := rawSender(b, bn.a, frame)
			b.SetBytes(int64(size))
			start := time.Now()
			sent := 0
			for b.Loop() {
				if unix.Sendto(fd, frame, 0, sa) == nil {
					sent++
				}
			}
			// Let the capture drain what is queued: stop once the
			// count has not moved for 50 ms.
			for last := ^uint64(0); ; time.Sleep(50 * time.Millisecond) {
				st := c.Stats()
				if st.Packets+st.Drops == last {
					break
				}
				last = st.Packets + st.Drops
			}
			elapsed := time.Since(start)
			cancel()
			st := <-done
			b.ReportMetric(float64(st.Packets)/elapsed.Seconds(), "captured/s")
			b.ReportMetric(100*float64(st.Packets+st.Drops)/float64(max(sent, 1)), "seen%")
			b.ReportMetric(100*float64(st.Drops)/float64(max(st.Packets+st.Drops, 1)), "drop%")
		})
	}
}
