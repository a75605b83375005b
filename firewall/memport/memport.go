// Package memport provides in-memory implementations of firewall.Port for
// tests that need no root and no real interfaces: a Pair of connected
// ports (a virtual cable) and a Recorder that keeps what the firewall
// writes and lets a test inject what it reads.
// It must not import any falab package (it meets firewall.Port by its method
// set alone), and no package that ships in the falab binary may import it:
// it is a test fake.
package memport

import (
	"errors"
	"sync"
)

// ErrClosed is returned by ReadBatch and WriteBatch after Close.
var ErrClosed = errors.New("memport: port closed")

// Port is one end of an in-memory link. Frames written to it are read by
// its peer; frames injected into it are read by its own reader. ReadBatch
// is for one goroutine; WriteBatch, Inject and Close are safe for
// concurrent use.
type Port struct {
	rx        chan []byte
	peer      *Port
	done      chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	dropped int // guarded by mu: frames lost to a full receive queue
}

// Pair returns two connected ports, each with a receive queue of depth
// frames; writes to a full queue are dropped and counted, as a NIC would.
func Pair(depth int) (*Port, *Port) {
	a, b := newPort(depth), newPort(depth)
	a.peer, b.peer = b, a
	return a, b
}

func newPort(depth int) *Port {
	return &Port{rx: make(chan []byte, depth), done: make(chan struct{})}
}

// ReadBatch blocks until at least one frame is queued, then copies as many
// as fit into bufs. It returns ErrClosed after Close.
func (p *Port) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	select {
	case <-p.done:
		return 0, ErrClosed
	case fr := <-p.rx:
		sizes[0] = copy(bufs[0], fr)
	}
	n := 1
	for n < len(bufs) {
		select {
		case fr := <-p.rx:
			sizes[n] = copy(bufs[n], fr)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// WriteBatch copies the frames to the peer's receive queue.
func (p *Port) WriteBatch(frames [][]byte) (int, error) {
	select {
	case <-p.done:
		return 0, ErrClosed
	default:
	}
	for _, fr := range frames {
		p.peer.Inject(fr)
	}
	return len(frames), nil
}

// Inject queues a copy of frame for this port's reader, dropping it if
// the queue is full.
func (p *Port) Inject(frame []byte) {
	c := append([]byte(nil), frame...)
	select {
	case p.rx <- c:
	default:
		p.mu.Lock()
		p.dropped++
		p.mu.Unlock()
	}
}

// Dropped returns how many frames were lost to a full receive queue.
func (p *Port) Dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// Close unblocks ReadBatch. Closing twice is harmless.
func (p *Port) Close() error {
	p.closeOnce.Do(func() { close(p.done) })
	return nil
}

// Recorder is a Port that keeps a copy of every frame written to it, for
// tests that call HandleFrame directly. Its ReadBatch blocks until Close.
// Safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	frames [][]byte // guarded by mu
	done   chan struct{}
	once   sync.Once
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{done: make(chan struct{})} }

// ReadBatch blocks until Close and returns ErrClosed.
func (r *Recorder) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	<-r.done
	return 0, ErrClosed
}

// WriteBatch records copies of the frames.
func (r *Recorder) WriteBatch(frames [][]byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fr := range frames {
		r.frames = append(r.frames, append([]byte(nil), fr...))
	}
	return len(frames), nil
}

// Close unblocks ReadBatch.
func (r *Recorder) Close() error {
	r.once.Do(func() { close(r.done) })
	return nil
}

// Take returns the frames written since the last Take and forgets them.
func (r *Recorder) Take() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.frames
	r.frames = nil
	return f
}

// Discard is a Port that accepts and forgets every write, for benchmarks.
// Its ReadBatch blocks until Close.
type Discard struct {
	done chan struct{}
	once sync.Once
}

// NewDiscard returns a Discard port.
func NewDiscard() *Discard { return &Discard{done: make(chan struct{})} }

// ReadBatch blocks until Close and returns ErrClosed.
func (d *Discard) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	<-d.done
	return 0, ErrClosed
}

// WriteBatch accepts the frames.
func (d *Discard) WriteBatch(frames [][]byte) (int, error) { return len(frames), nil }

// Close unblocks ReadBatch.
func (d *Discard) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}
