package lab

import (
	"os"
	"runtime"
	"testing"
)

// onMain runs functions on the process's main thread, for tests of code
// that must never leave that thread changed (see onThrowawayThread).
var onMain = make(chan func())

// TestMain keeps the main goroutine on the main thread, serving onMain,
// while the tests run on other goroutines.
func TestMain(m *testing.M) {
	runtime.LockOSThread()
	code := make(chan int)
	go func() { code <- m.Run() }()
	for {
		select {
		case fn := <-onMain:
			fn()
		case c := <-code:
			os.Exit(c)
		}
	}
}
