package memport

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPair(t *testing.T) {
	a, b := Pair(2)
	if n, err := a.WriteBatch([][]byte{[]byte("one"), []byte("two"), []byte("three")}); n != 3 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	bufs := [][]byte{make([]byte, 8), make([]byte, 8), make([]byte, 8)}
	sizes := make([]int, 3)
	n, err := b.ReadBatch(bufs, sizes)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range n {
		got = append(got, string(bufs[i][:sizes[i]]))
	}
	if d := cmp.Diff([]string{"one", "two"}, got); d != "" {
		t.Errorf("read (-want +got):\n%s", d)
	}
	if b.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1 (queue depth 2)", b.Dropped())
	}
	b.Close()
	if _, err := b.ReadBatch(bufs, sizes); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadBatch after Close = %v, want ErrClosed", err)
	}
	if _, err := b.WriteBatch(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteBatch after Close = %v, want ErrClosed", err)
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder()
	frame := []byte("abc")
	r.WriteBatch([][]byte{frame})
	frame[0] = 'x' // the recorder keeps a copy
	if d := cmp.Diff([][]byte{[]byte("abc")}, r.Take()); d != "" {
		t.Errorf("Take (-want +got):\n%s", d)
	}
	if got := r.Take(); got != nil {
		t.Errorf("second Take = %q, want nothing", got)
	}
	r.Close()
	if _, err := r.ReadBatch(nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadBatch after Close = %v", err)
	}
}
