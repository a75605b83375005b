package firewall

// MaxFrameSize is the size of the buffers Run hands to Port.ReadBatch and
// of the buffers that hold generated or queued frames: an Ethernet frame of
// the largest MTU an interface may have (MaxMTU, 9000) with its header, a
// VLAN tag and room to spare. Longer frames are the port's to truncate or
// drop. The buffers are allocated once (per reader) or pooled, so the size
// costs memory, not time.
const MaxFrameSize = 9216

// Port is one data interface's packet I/O. afpacket.Port implements it on
// real interfaces and memport on in-memory links for tests.
//
// ReadBatch fills up to len(bufs) frames (each buffer has length
// MaxFrameSize), sets sizes[i] to each frame's length and returns how many
// it filled; it blocks until at least one frame is available or the port
// fails, and returns an error once Close has been called. Only one
// goroutine calls ReadBatch.
//
// WriteBatch sends frames in order and returns how many it sent. It may be
// called from several goroutines at once (each reader forwards to every
// other port), and must not retain the frames after it returns.
//
// Close unblocks ReadBatch; it is called once, by Run when it stops.
type Port interface {
	ReadBatch(bufs [][]byte, sizes []int) (int, error)
	WriteBatch(frames [][]byte) (int, error)
	Close() error
}
