package ike

import (
	"encoding/binary"
	"net/netip"
)

// ChildSuite is one ESP algorithm set: AES-GCM-16 with a key size, and
// the DH group required for PFS in CREATE_CHILD_SA (DHNone: none; a rekey
// with a KE payload is then refused with NO_PROPOSAL_CHOSEN only if the
// peer insists on a group, see selectChild).
type ChildSuite struct {
	Encr    uint16 `json:"encr"`
	KeyBits uint16 `json:"key_bits"`
	DH      uint16 `json:"dh,omitempty"`
}

// String names the suite as strongSwan does.
func (s ChildSuite) String() string {
	str := Suite{Encr: s.Encr, KeyBits: s.KeyBits}.String()
	str = str[:len(str)-len("-prfsha256-none")]
	if s.DH != DHNone {
		str += "-" + dhName(s.DH)
	}
	return str
}

// ChildRecord is an ESP child SA as the data plane needs it. "In" is the
// direction peer to us (initiator to responder), whose SPI we chose; "Out"
// is us to peer, with the peer's SPI. Keys are AES keys, Salts the 4-byte
// RFC 4106 salts. LocalTS are our protected networks, RemoteTS the peer's.
type ChildRecord struct {
	InSPI    uint32     `json:"in_spi"`
	OutSPI   uint32     `json:"out_spi"`
	Suite    ChildSuite `json:"suite"`
	InKey    []byte     `json:"in_key"`
	InSalt   []byte     `json:"in_salt"`
	OutKey   []byte     `json:"out_key"`
	OutSalt  []byte     `json:"out_salt"`
	LocalTS  []Selector `json:"local_ts"`
	RemoteTS []Selector `json:"remote_ts"`
}

// Record is everything a standby needs to continue an established IKE SA:
// identity (SPIs), keys, algorithms, where the peer is, and the message-ID
// state with the last response so that a retransmitted request gets the
// same bytes back. It marshals with encoding/json.
type Record struct {
	SPIi  uint64 `json:"spi_i"`
	SPIr  uint64 `json:"spi_r"`
	Suite Suite  `json:"suite"`
	SKd   []byte `json:"sk_d"`
	SKai  []byte `json:"sk_ai,omitempty"`
	SKar  []byte `json:"sk_ar,omitempty"`
	SKei  []byte `json:"sk_ei"`
	SKer  []byte `json:"sk_er"`
	SKpi  []byte `json:"sk_pi"`
	SKpr  []byte `json:"sk_pr"`
	// Local and Peer are the addresses of the last authenticated request;
	// after NAT detection both are on port 4500.
	Local netip.AddrPort `json:"local"`
	Peer  netip.AddrPort `json:"peer"`
	// NATLocal: we are behind a NAT; NATPeer: the peer is (RFC 7296 §2.23).
	NATLocal bool   `json:"nat_local"`
	NATPeer  bool   `json:"nat_peer"`
	PeerID   string `json:"peer_id"`
	// NextMessageID is the ID the next new request must carry;
	// LastResponse answers a retransmission of NextMessageID-1.
	NextMessageID uint32 `json:"next_message_id"`
	// MIDSync: both sides announced RFC 6311 message ID sync in IKE_AUTH,
	// so a new active may ask the peer which message IDs it expects.
	MIDSync      bool          `json:"mid_sync,omitempty"`
	LastResponse []byte        `json:"last_response,omitempty"`
	Children     []ChildRecord `json:"children"`
}

type saState uint8

const (
	stateHalfOpen saState = iota // IKE_SA_INIT answered, waiting for IKE_AUTH
	stateEstablished
)

// SA is one IKE SA on the responder side.
type SA struct {
	state      saState
	spii, spir uint64
	suite      Suite
	keys       Keys
	in, out    *skCipher // in: initiator's messages (SK_ei/SK_ai); out: ours
	local      netip.AddrPort
	peer       netip.AddrPort
	natLocal   bool
	natPeer    bool
	peerID     string
	nextID     uint32
	lastResp   []byte
	children   []ChildRecord
	midSync    bool   // RFC 6311 negotiated
	syncNonce  []byte // the nonce of our outstanding MID sync request (not replicated)

	// Half-open only: what IKE_AUTH signs.
	ni, nr           []byte
	initReq, initRsp []byte
	initPeer         netip.AddrPort // the key of Responder.halfOpen
}

// SPIr is our SPI of the SA, the key of the responder's table.
func (sa *SA) SPIr() uint64 { return sa.spir }

// Established reports whether IKE_AUTH completed.
func (sa *SA) Established() bool { return sa.state == stateEstablished }

// Children returns copies of the child SAs.
func (sa *SA) Children() []ChildRecord { return append([]ChildRecord(nil), sa.children...) }

// Export returns the SA's replicable state. Call it after every Handle that
// reported the SA changed, so that the message IDs on the standby follow
// each request (as strongSwan's HA plugin does).
func (sa *SA) Export() Record {
	return Record{
		SPIi: sa.spii, SPIr: sa.spir, Suite: sa.suite,
		SKd: sa.keys.D, SKai: sa.keys.Ai, SKar: sa.keys.Ar,
		SKei: sa.keys.Ei, SKer: sa.keys.Er, SKpi: sa.keys.Pi, SKpr: sa.keys.Pr,
		Local: sa.local, Peer: sa.peer, NATLocal: sa.natLocal, NATPeer: sa.natPeer,
		PeerID:        sa.peerID,
		NextMessageID: sa.nextID,
		MIDSync:       sa.midSync,
		LastResponse:  append([]byte(nil), sa.lastResp...),
		Children:      sa.Children(),
	}
}

// saFromRecord rebuilds an established SA.
func saFromRecord(r Record) (*SA, error) {
	sa := &SA{
		state: stateEstablished, spii: r.SPIi, spir: r.SPIr, suite: r.Suite,
		keys:  Keys{D: r.SKd, Ai: r.SKai, Ar: r.SKar, Ei: r.SKei, Er: r.SKer, Pi: r.SKpi, Pr: r.SKpr},
		local: r.Local, peer: r.Peer, natLocal: r.NATLocal, natPeer: r.NATPeer,
		peerID: r.PeerID, nextID: r.NextMessageID, midSync: r.MIDSync,
		lastResp: append([]byte(nil), r.LastResponse...),
		children: append([]ChildRecord(nil), r.Children...),
	}
	if err := sa.initCiphers(); err != nil {
		return nil, err
	}
	return sa, nil
}

func (sa *SA) initCiphers() error {
	in, err := newSKCipher(sa.suite, sa.keys.Ei, sa.keys.Ai)
	if err != nil {
		return err
	}
	out, err := newSKCipher(sa.suite, sa.keys.Er, sa.keys.Ar)
	if err != nil {
		return err
	}
	sa.in, sa.out = in, out
	return nil
}

// childByOutSPI finds a child by the peer's SPI (what REKEY_SA and Delete
// name), returning its index or -1.
func (sa *SA) childByOutSPI(spi []byte) int {
	if len(spi) != 4 {
		return -1
	}
	v := binary.BigEndian.Uint32(spi)
	for i, c := range sa.children {
		if c.OutSPI == v {
			return i
		}
	}
	return -1
}
