package main

import (
	"syscall"
	"testing"
)

// TestInheritedFDsNotPassedOn: a descriptor open without close-on-exec
// (as `flock LOCK falab ...` leaves LOCK) is marked close-on-exec, so the
// units and daemons falab starts do not hold it.
func TestInheritedFDsNotPassedOn(t *testing.T) {
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	flags := func() uintptr {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if e != 0 {
			t.Fatal(e)
		}
		return r
	}
	if flags()&syscall.FD_CLOEXEC != 0 {
		t.Fatal("test descriptor already close-on-exec")
	}
	keepInheritedFDsFromChildren()
	if flags()&syscall.FD_CLOEXEC == 0 {
		t.Error("inherited descriptor would be passed to children")
	}
}
