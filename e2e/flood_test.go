package e2e

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// forgedHello is a frame that passes an interface hello's cheap checks
// (length, layout, a unit's name) and so reaches the rate limit, but whose
// seal (24-byte header, 16-byte MAC) is random: it can never open.
func forgedHello(src net.HardwareAddr, name string) []byte {
	f := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	f = append(f, src...)
	f = binary.BigEndian.AppendUint16(f, 0x88B5)
	seal := make([]byte, 24)
	rand.Read(seal)
	f = append(f, seal...)
	round := make([]byte, 8)
	rand.Read(round)
	f = append(f, 2) // an answer
	f = append(f, round...)
	f = append(f, byte(len(name)))
	f = append(f, name...)
	f = append(f, 1)
	tag := make([]byte, 16)
	rand.Read(tag)
	return append(f, tag...)
}

// floodHellos sends forged interface hellos in each of names from eth0 of
// every namespace in nsNames (one sender each, with its own MAC) for d, as
// fast as a raw socket takes them, and returns how many each sent. It is
// Go, not scapy: a rate limit of 1000 a second per source is only tested
// by a flood far above it.
func floodHellos(nsNames []string, macs []net.HardwareAddr, names []string, d time.Duration) ([]int, error) {
	sent := make([]int, len(nsNames))
	errs := make([]error, len(nsNames))
	var wg sync.WaitGroup
	for i := range nsNames {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[i], errs[i] = floodFrom(nsNames[i], macs[i], names, d)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// floodFrom opens the raw socket inside the namespace on a locked thread
// (the socket keeps its namespace afterwards) and sends from it.
func floodFrom(nsName string, mac net.HardwareAddr, names []string, d time.Duration) (int, error) {
	fd, err := rawSocketIn(nsName)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var frames [][]byte
	for range 64 {
		for _, n := range names {
			frames = append(frames, forgedHello(mac, n))
		}
	}
	n := 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		for _, f := range frames {
			if _, err := unix.Write(fd, f); err == nil {
				n++
			}
		}
	}
	return n, nil
}

func rawSocketIn(nsName string) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return -1, err
	}
	defer orig.Close()
	target, err := netns.GetFromName(nsName)
	if err != nil {
		return -1, fmt.Errorf("namespace %s: %w", nsName, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return -1, err
	}
	defer netns.Set(orig)
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		return -1, fmt.Errorf("%s eth0: %w", nsName, err)
	}
	// Protocol 0: this socket sends only, it receives nothing.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
