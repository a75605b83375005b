package firewall

import (
	"testing"
	"unsafe"
)

// TestTableEntrySizes keeps the per-connection structures in the size
// classes their field order was chosen for: a connection in 144 bytes, an
// xlate in 48 (the memory figure of `falab bench` is mostly these).
func TestTableEntrySizes(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 144 {
		t.Errorf("conn is %d bytes, want at most 144", n)
	}
	if n := unsafe.Sizeof(xlate{}); n > 48 {
		t.Errorf("xlate is %d bytes, want at most 48", n)
	}
}
