package unit

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/replicate"
)

// Hellos and data-interface probes (interface hellos) are authenticated
// with the lab's failover key, so that a host on a data network cannot
// forge a probe answer (and so hold off a takeover) nor a hello. A sealed
// message is
//
//	timestamp(8) | epoch(8) | seq(8) | body | HMAC-SHA256(k, all before)[:16]
//
// where k is derived from the failover key once per purpose ("hello",
// "probe") at unit start. The epoch is random per boot of a unit and the
// sequence number strictly increases within it, so the receiver, which
// remembers the peer's current epoch and highest sequence (a window),
// refuses any message not newer than the last one it accepted: a recorded
// hello replayed even within the timestamp's tolerance is refused. A new
// epoch (the peer restarted) is taken only from an authenticated message
// newer than anything accepted before; the old epoch is dead from then on.
// The timestamp check stays: a thawed unit reads a backlog of its peer's
// hellos that are authentic and in sequence but describe the past (stale).
// Both units share one machine's clock.
const (
	sealHeaderLen = 24
	sealMACLen    = 16
	sealOverhead  = sealHeaderLen + sealMACLen
	maxSealAge    = 2 * time.Second
)

// rejectReason says why a hello or interface hello was refused.
type rejectReason uint8

const (
	accepted          rejectReason = iota
	rejectAuth                     // the HMAC does not match: a wrong key or a forgery
	rejectStale                    // timestamp outside maxSealAge: a thawed unit's backlog
	rejectReplay                   // not newer than the peer's last accepted message
	rejectPortCheck                // the peer's own port check (peerPortRefused), not a hello
	rejectRateLimited              // an interface hello over its interface's token bucket
	rejectMalformed                // too short, wrong layout, from elsewhere, undecodable
	numRejectReasons
)

func (r rejectReason) String() string {
	switch r {
	case accepted:
		return "accepted"
	case rejectAuth:
		return "failed authentication (wrong failover key?)"
	case rejectStale:
		return "stale (sent longer ago than its channel allows: the unit hold on the failover link, " + maxSealAge.String() + " for interface hellos)"
	case rejectReplay:
		return "a replay (not newer than the peer's last message)"
	case rejectPortCheck:
		return "the peer's port check"
	case rejectRateLimited:
		return "rate-limited"
	case rejectMalformed:
		return "malformed"
	}
	return "unknown"
}

// rejectCounters counts refusals by reason; safe for concurrent use.
type rejectCounters [numRejectReasons]atomic.Uint64

func (c *rejectCounters) add(r rejectReason) { c[r].Add(1) }

func (c *rejectCounters) counts() api.RejectCounts {
	return api.RejectCounts{
		BadAuth: c[rejectAuth].Load(), Stale: c[rejectStale].Load(), Replay: c[rejectReplay].Load(),
		PortCheck: c[rejectPortCheck].Load(), RateLimited: c[rejectRateLimited].Load(), Malformed: c[rejectMalformed].Load(),
	}
}

// macKey derives one purpose's HMAC key from the failover key.
func macKey(key replicate.Key, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, key[:], nil, "falab "+purpose, 32)
	if err != nil {
		panic(err) // only for impossible lengths
	}
	return k
}

// sealer seals one purpose's outgoing messages under this boot's epoch.
// Safe for concurrent use; a caller that needs its messages to arrive in
// sequence order on one path must serialise seal and send.
type sealer struct {
	mac   []byte // derived once
	epoch uint64
	seq   atomic.Uint64
	now   func() time.Time
}

func newSealer(key replicate.Key, purpose string) *sealer {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &sealer{mac: macKey(key, purpose), epoch: binary.BigEndian.Uint64(b[:]), now: time.Now}
}

func (s *sealer) seal(body []byte) []byte {
	out := make([]byte, sealHeaderLen, sealOverhead+len(body))
	binary.BigEndian.PutUint64(out[0:], uint64(s.now().UnixNano()))
	binary.BigEndian.PutUint64(out[8:], s.epoch)
	binary.BigEndian.PutUint64(out[16:], s.seq.Add(1))
	out = append(out, body...)
	m := hmac.New(sha256.New, s.mac)
	m.Write(out)
	return m.Sum(out)[:len(out)+sealMACLen]
}

// opener checks one purpose's incoming messages against a window.
type opener struct {
	mac []byte // derived once
	now func() time.Time
	// macs counts HMACs computed: tests check that cheap refusals
	// (rate limit, replay, stale) cost none.
	macs atomic.Uint64
}

func newOpener(key replicate.Key, purpose string) *opener {
	return &opener{mac: macKey(key, purpose), now: time.Now}
}

// window is what a receiver remembers of the peer's sealed stream on one
// path: its current epoch, the highest sequence accepted in it, the newest
// timestamp accepted, and the epoch it replaced (dead).
type window struct {
	// maxAge is the oldest (or furthest ahead) a message may be; zero:
	// maxSealAge. Set before use.
	maxAge time.Duration

	mu     sync.Mutex
	known  bool   // guarded by mu: an epoch has been accepted
	epoch  uint64 // guarded by mu
	dead   uint64 // guarded by mu: the previous epoch, refused outright
	seq    uint64 // guarded by mu
	newest int64  // guarded by mu: newest timestamp accepted (ns)
}

// check says whether a message with these fields could be accepted, without
// changing anything; update accepts it if it still can.
func (w *window) check(ts int64, epoch, seq uint64, update bool) rejectReason {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !w.known:
	case epoch == w.epoch:
		if seq <= w.seq {
			return rejectReplay
		}
	case epoch == w.dead || ts <= w.newest:
		// An old epoch, or one no newer than what the current epoch
		// already said: a restarted peer's messages come after its old
		// ones, so this is a recording.
		return rejectReplay
	}
	if update {
		if !w.known || epoch != w.epoch {
			if w.known {
				w.dead = w.epoch
			}
			w.known, w.epoch = true, epoch
		}
		w.seq = seq
		w.newest = max(w.newest, ts)
	}
	return accepted
}

// open checks msg and, if the peer sent it and it is newer than anything
// accepted on w, advances w and returns the body (a slice of msg). The
// cheap checks (length, timestamp, sequence) come before the HMAC, so a
// flood of replays or junk costs no hashing; a forgery may therefore be
// counted as stale or a replay rather than as an authentication failure.
func (o *opener) open(w *window, msg []byte) ([]byte, rejectReason) {
	if len(msg) < sealOverhead {
		return nil, rejectMalformed
	}
	ts := int64(binary.BigEndian.Uint64(msg[0:]))
	epoch := binary.BigEndian.Uint64(msg[8:])
	seq := binary.BigEndian.Uint64(msg[16:])
	maxAge := w.maxAge
	if maxAge <= 0 {
		maxAge = maxSealAge
	}
	if age := o.now().Sub(time.Unix(0, ts)); age > maxAge || age < -maxAge {
		return nil, rejectStale
	}
	if r := w.check(ts, epoch, seq, false); r != accepted {
		return nil, r
	}
	signed, mac := msg[:len(msg)-sealMACLen], msg[len(msg)-sealMACLen:]
	o.macs.Add(1)
	m := hmac.New(sha256.New, o.mac)
	m.Write(signed)
	var sum [sha256.Size]byte
	if !hmac.Equal(m.Sum(sum[:0])[:sealMACLen], mac) {
		return nil, rejectAuth
	}
	// Again under the lock: another reader may have taken a newer one.
	if r := w.check(ts, epoch, seq, true); r != accepted {
		return nil, r
	}
	return signed[sealHeaderLen:], accepted
}
