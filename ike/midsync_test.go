package ike

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"
)

// TestMIDSync: a standby whose record is one request behind (the old
// active answered a DPD whose record never arrived) asks the peer with an
// RFC 6311 sync request (message ID 0, nonce, the IDs it expects); the
// peer's answer moves its expected ID to the peer's next request, which it
// then answers. Without the sync that request would be refused as out of
// window. A replayed or foreign-nonce answer changes nothing, and an SA
// that did not negotiate the sync makes no request.
func TestMIDSync(t *testing.T) {
	a, b := NewResponder(testConfig()), NewResponder(testConfig())
	in := newTestInitiator(t, a, suiteGCM256X25519, ChildSuite{Encr: EncrAESGCM16, KeyBits: 256})
	in.midSync = true
	in.ikeSA()
	inner, _ := in.auth()
	if !hasNotify(inner, NotifyMessageIDSyncSupported) {
		t.Fatal("IKE_AUTH response does not announce MID sync")
	}
	stale := a.SA(in.spir).Export()
	if !stale.MIDSync {
		t.Fatal("record without MIDSync")
	}
	in.dpd() // answered by a; its record is lost
	if err := b.Import(stale); err != nil {
		t.Fatal(err)
	}

	if b.MIDSyncPending(in.spir) {
		t.Fatal("a sync pending before any request")
	}
	req, err := b.MIDSyncRequest(in.spir)
	if err != nil || req == nil {
		t.Fatalf("MIDSyncRequest: %v", err)
	}
	if !b.MIDSyncPending(in.spir) {
		t.Fatal("no sync pending after the request: the caller would never resend it")
	}
	m, err := ParseMessage(req)
	if err != nil || m.MessageID != 0 || m.Flags != 0 || m.Exchange != ExchangeInformational {
		t.Fatalf("sync request header %+v (%v)", m.Header, err)
	}
	ps, err := in.dec.open(m.Raw, *find(m.Payloads, PayloadSK))
	if err != nil || len(ps) != 1 {
		t.Fatalf("sync request: %d payloads, %v", len(ps), err)
	}
	n, _ := ParseNotify(ps[0].Body)
	if n.Type != NotifyMessageIDSync || len(n.Data) != 12 || binary.BigEndian.Uint32(n.Data[4:]) != 1 || binary.BigEndian.Uint32(n.Data[8:]) != stale.NextMessageID {
		t.Fatalf("sync notify %+v", n)
	}
	answer := func(nonce []byte) []byte {
		data := append(append([]byte(nil), nonce...), binary.BigEndian.AppendUint32(nil, in.nextID)...)
		data = binary.BigEndian.AppendUint32(data, 1)
		h := Header{SPIi: in.spii, SPIr: in.spir, Exchange: ExchangeInformational, Flags: FlagInitiator | FlagResponse}
		b, err := in.enc.seal(h, []Payload{notifyPayload(NotifyMessageIDSync, data)}, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if res := b.Handle(Packet{Data: answer([]byte{1, 2, 3, 4}), Local: in.peer, Remote: in.addr}); res.Err == nil || res.Changed {
		t.Errorf("an answer with a foreign nonce: %+v", res)
	}
	if !b.MIDSyncPending(in.spir) {
		t.Error("a foreign answer ended the pending sync")
	}
	good := answer(n.Data[:4])
	if res := b.Handle(Packet{Data: good, Local: in.peer, Remote: in.addr}); res.Err != nil || !res.Changed {
		t.Fatalf("the peer's answer: %+v", res)
	}
	if got := b.SA(in.spir).Export().NextMessageID; got != in.nextID {
		t.Fatalf("expected message ID %d after the sync, want the peer's %d", got, in.nextID)
	}
	if b.MIDSyncPending(in.spir) {
		t.Error("the sync is still pending after the peer's answer: it would be resent")
	}
	if res := b.Handle(Packet{Data: good, Local: in.peer, Remote: in.addr}); !errors.Is(res.Err, ErrResponse) {
		t.Errorf("a replayed answer: %+v", res)
	}
	in.send = b.Handle
	in.dpd() // the peer's next request, answered by b

	c := NewResponder(testConfig())
	in2 := newTestInitiator(t, c, suiteGCM256X25519, ChildSuite{Encr: EncrAESGCM16, KeyBits: 256})
	establish(t, in2)
	if req, err := c.MIDSyncRequest(in2.spir); req != nil || err != nil {
		t.Errorf("a sync request for an SA without MID sync: %v", err)
	}
}
