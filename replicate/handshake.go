package replicate

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Handshake errors.
var (
	// ErrRole means both ends claimed the same role (two actives, or two
	// standbys, on one link).
	ErrRole = errors.New("replicate: peer has the same role as we do")
	// ErrHandshake means the peer broke the handshake's message order.
	ErrHandshake = errors.New("replicate: handshake failed")
	// ErrPeerClosed means the peer sent Close; the error text carries its
	// code and reason.
	ErrPeerClosed = errors.New("replicate: peer closed the session")
)

// Handshake, strictly alternating so it works on unbuffered pipes:
//
//	sender   -> Hello{sender, Ns}           cleartext
//	receiver -> Hello{receiver, Nr}         cleartext
//	            both: T = SHA-256(hello_s body || hello_r body)
//	            k_sr = HKDF(key, salt=T, "…sender->receiver"), k_rs likewise
//	sender   -> Auth{T}                     sealed with k_sr, seq 1
//	receiver -> Auth{T}                     sealed with k_rs, seq 1
//	            (or cleartext Close{auth-failed} when the sender's Auth did not open)
//
// Fresh nonces from both sides make every session's keys new, so frames
// recorded from an old session never open in a new one.

// conn bundles a session's framed, sealed transport.
type conn struct {
	nc net.Conn
	w  sealer
	r  frameReader
}

func newConn(nc net.Conn, role Role) *conn {
	c := &conn{nc: nc}
	c.r.r = bufio.NewReaderSize(nc, 64<<10)
	if role == RoleSender {
		c.w.dir, c.r.dir = dirSenderToReceiver, dirReceiverToSender
	} else {
		c.w.dir, c.r.dir = dirReceiverToSender, dirSenderToReceiver
	}
	return c
}

// writeMessage seals and writes one message (control path; the sender's
// bulk path batches frames itself).
func (c *conn) writeMessage(m Message) error {
	b, err := c.w.appendMessage(nil, m)
	if err != nil {
		return err
	}
	_, err = c.nc.Write(b)
	return err
}

// closeError turns a received Close body into an error.
func closeError(body []byte) error {
	var cl Close
	if err := cl.UnmarshalBinary(body); err != nil {
		return fmt.Errorf("%w (unreadable Close: %v)", ErrPeerClosed, err)
	}
	if cl.Code == CloseAuthFailed {
		return fmt.Errorf("%w (peer said: %s)", ErrWrongKey, cl.Reason)
	}
	return fmt.Errorf("%w: %v: %s", ErrPeerClosed, cl.Code, cl.Reason)
}

// handshake runs the exchange above on c with the given deadline (zero: none)
// and leaves c sealed in both directions.
func (c *conn) handshake(role Role, key Key, timeout time.Duration) error {
	if key.IsZero() {
		return fmt.Errorf("%w: no failover key configured (the sync link is never cleartext)", ErrHandshake)
	}
	if timeout > 0 {
		if err := c.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		defer c.nc.SetDeadline(time.Time{})
	}
	mine := Hello{Role: role}
	if _, err := io.ReadFull(rand.Reader, mine.Nonce[:]); err != nil {
		return fmt.Errorf("replicate: nonce: %w", err)
	}
	myBody, _ := mine.AppendBinary(nil)
	var peerBody []byte
	if role == RoleSender {
		if err := c.writeMessage(&mine); err != nil {
			return fmt.Errorf("%w: sending Hello: %w", ErrHandshake, err)
		}
		b, err := c.readHello(RoleReceiver)
		if err != nil {
			return err
		}
		peerBody = b
	} else {
		b, err := c.readHello(RoleSender)
		if err != nil {
			return err
		}
		peerBody = b
		if err := c.writeMessage(&mine); err != nil {
			return fmt.Errorf("%w: sending Hello: %w", ErrHandshake, err)
		}
	}
	th := sha256.New()
	if role == RoleSender {
		th.Write(myBody)
		th.Write(peerBody)
	} else {
		th.Write(peerBody)
		th.Write(myBody)
	}
	var transcript [32]byte
	th.Sum(transcript[:0])
	var err error
	if c.w.aead, err = deriveAEAD(key, transcript, c.w.dir); err != nil {
		return err
	}
	if c.r.aead, err = deriveAEAD(key, transcript, c.r.dir); err != nil {
		return err
	}
	auth := Auth{Transcript: transcript}
	if role == RoleSender {
		if err := c.writeMessage(&auth); err != nil {
			return fmt.Errorf("%w: sending Auth: %w", ErrHandshake, err)
		}
		return c.readAuth(transcript)
	}
	if err := c.readAuth(transcript); err != nil {
		if errors.Is(err, ErrWrongKey) {
			// Tell the sender in the clear why; there is no shared key to
			// seal it with. It is informative only: the sender fails
			// either way.
			c.w.aead = nil
			_ = c.writeMessage(&Close{Code: CloseAuthFailed, Reason: "your Auth frame did not open with my failover key"})
		}
		return err
	}
	if err := c.writeMessage(&auth); err != nil {
		return fmt.Errorf("%w: sending Auth: %w", ErrHandshake, err)
	}
	return nil
}

func (c *conn) readHello(want Role) ([]byte, error) {
	h, body, err := c.r.next()
	if err != nil {
		return nil, fmt.Errorf("%w: reading Hello: %w", ErrHandshake, err)
	}
	switch h.Type {
	case MsgHello:
	case MsgClose:
		return nil, closeError(body)
	default:
		return nil, fmt.Errorf("%w: expected Hello, got %v", ErrHandshake, h.Type)
	}
	var hello Hello
	if err := hello.UnmarshalBinary(body); err != nil {
		return nil, fmt.Errorf("%w: Hello: %w", ErrHandshake, err)
	}
	if hello.Role != want {
		return nil, fmt.Errorf("%w: both are %vs", ErrRole, hello.Role)
	}
	return append([]byte(nil), body...), nil
}

func (c *conn) readAuth(transcript [32]byte) error {
	// The peer's Auth is sealed with keys from the peer's failover key;
	// with the wrong key, the frame reader reports ErrDecrypt. Its
	// cleartext Close (auth-failed) is a cleartext frame after the keys,
	// which the reader refuses: accept it here, once.
	aead := c.r.aead
	h, body, err := c.r.next()
	if errors.Is(err, ErrCleartext) && h.Type == MsgClose && h.Length <= maxCleartextBody {
		c.r.aead = nil
		_, body, err = c.readBody(h)
		c.r.aead = aead
		if err != nil {
			return fmt.Errorf("%w: reading Close: %w", ErrHandshake, err)
		}
		return closeError(body)
	}
	if errors.Is(err, ErrDecrypt) {
		return fmt.Errorf("%w: %w", ErrWrongKey, err)
	}
	if err != nil {
		return fmt.Errorf("%w: reading Auth: %w", ErrHandshake, err)
	}
	if h.Type != MsgAuth {
		return fmt.Errorf("%w: expected Auth, got %v", ErrHandshake, h.Type)
	}
	var a Auth
	if err := a.UnmarshalBinary(body); err != nil {
		return fmt.Errorf("%w: Auth: %w", ErrHandshake, err)
	}
	if subtle.ConstantTimeCompare(a.Transcript[:], transcript[:]) != 1 {
		return fmt.Errorf("%w: Auth transcript differs", ErrHandshake)
	}
	return nil
}

// readBody reads the body of a frame whose header f.next already consumed
// and rejected (used only for the cleartext Close above).
func (c *conn) readBody(h Header) (Header, []byte, error) {
	body := make([]byte, h.Length)
	if _, err := io.ReadFull(c.r.r, body); err != nil {
		return h, nil, err
	}
	return h, body, nil
}
