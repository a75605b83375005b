package sip

import (
	"testing"
	"time"
)

func BenchmarkParse(b *testing.B) {
	msgs := sippMessages(&testing.T{}, "testdata/sipp_uac_messages.log")
	var m Message
	b.ReportAllocs()
	for b.Loop() {
		_ = Parse(msgs[0], &m)
	}
}

// BenchmarkCall inspects sipp's whole six-message call on a fresh
// inspector per iteration.
func BenchmarkCall(b *testing.B) {
	msgs := sippMessages(&testing.T{}, "testdata/sipp_uac_messages.log")
	b.ReportAllocs()
	for b.Loop() {
		in := New(Config{})
		for i, m := range msgs {
			in.Inspect(m, t0.Add(time.Duration(i)))
		}
	}
}

func BenchmarkRewrite(b *testing.B) {
	msgs := sippMessages(&testing.T{}, "testdata/sipp_uac_messages.log")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Rewrite(msgs[0], realToMapped)
	}
}
