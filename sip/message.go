package sip

import (
	"bytes"
	"errors"
)

// Bounds on what Parse accepts. A message beyond them is malformed: no
// telephone sends one, and an inspector must not spend unbounded work on
// bytes an attacker chose.
const (
	MaxMessageSize = 16 << 10 // bytes in one payload
	MaxHeaders     = 64       // header lines in one message
	MaxVias        = 8        // Via entries (hops) in one message
	MaxMedia       = 8        // m= lines in one SDP body
	maxToken       = 255      // bytes in a Call-ID, tag, branch or method
)

// Errors from Parse; each is a malformed message.
var (
	ErrTooLarge      = errors.New("sip: message too large")
	ErrStartLine     = errors.New("sip: bad request or status line")
	ErrHeader        = errors.New("sip: bad header line")
	ErrTooMany       = errors.New("sip: too many headers, Vias or media")
	ErrDuplicate     = errors.New("sip: single-valued header repeated")
	ErrMissing       = errors.New("sip: mandatory header missing")
	ErrContentLength = errors.New("sip: Content-Length does not match the body")
	ErrSDP           = errors.New("sip: bad SDP body")
)

// span is a byte range [off, end) of the payload; end == 0 means absent.
type span struct{ off, end int }

func (s span) ok() bool           { return s.end > 0 }
func (s span) of(b []byte) []byte { return b[s.off:s.end] }

// HostPort is a host[:port] in a Via sent-by, a Contact or a Request-URI.
type HostPort struct {
	Host, PortText span    // PortText absent when no port is written
	Addr           [4]byte // the host when it is an IPv4 literal
	IsIP           bool
	Port           uint16 // the written port, 0 when absent
}

// Message is one parsed SIP message. Byte-slice fields alias the payload
// given to Parse, so a Message is valid only while that payload is.
type Message struct {
	Request    bool
	Method     []byte // the request's method; for a response, the CSeq method
	Status     int    // a response's status code
	RequestURI HostPort
	CallID     []byte
	FromTag    []byte
	ToTag      []byte
	Branch     []byte // the top Via's branch parameter
	CSeq       uint32
	CSeqMethod []byte
	Vias       [MaxVias]HostPort
	NumVias    int
	Contact    HostPort // the first Contact's URI host
	HasContact bool
	ContentLen span // the Content-Length value, absent if not written
	SDPBody    bool // Content-Type is application/sdp and the body is not empty
	BodyOff    int  // where the body starts
	SDP        SDP
}

// header names, by the index Parse keeps them in.
const (
	hVia = iota
	hFrom
	hTo
	hCallID
	hCSeq
	hContact
	hContentLength
	hContentType
	hOther
)

// headerIndex maps a header name, full or compact (RFC 3261 §7.3.3), to
// its index; names compare case-insensitively.
func headerIndex(name []byte) int {
	if len(name) == 1 {
		switch name[0] | 0x20 {
		case 'v':
			return hVia
		case 'f':
			return hFrom
		case 't':
			return hTo
		case 'i':
			return hCallID
		case 'm':
			return hContact
		case 'l':
			return hContentLength
		case 'c':
			return hContentType
		}
		return hOther
	}
	for i, full := range [...]string{"via", "from", "to", "call-id", "cseq", "contact", "content-length", "content-type"} {
		if len(name) == len(full) && asciiEqualFold(name, full) {
			return i
		}
	}
	return hOther
}

// Parse parses payload b into m. It allocates nothing; on error m is
// partly filled and must not be used.
func Parse(b []byte, m *Message) error {
	*m = Message{}
	if len(b) > MaxMessageSize {
		return ErrTooLarge
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return ErrHeader
	}
	head := b[:end+2]
	m.BodyOff = end + 4
	nl := bytes.Index(head, []byte("\r\n"))
	if err := m.parseStartLine(head[:nl]); err != nil {
		return err
	}
	var seen [hOther]bool
	pos := nl + 2
	for n := 0; pos < len(head); n++ {
		if n == MaxHeaders {
			return ErrTooMany
		}
		e := bytes.Index(head[pos:], []byte("\r\n"))
		line := head[pos : pos+e]
		if err := m.parseHeader(line, pos, &seen); err != nil {
			return err
		}
		pos += e + 2
	}
	for _, h := range [...]int{hVia, hFrom, hTo, hCallID, hCSeq} {
		if !seen[h] {
			return ErrMissing
		}
	}
	if !m.Request {
		m.Method = m.CSeqMethod
	} else if !bytes.Equal(m.Method, m.CSeqMethod) {
		return ErrHeader
	}
	return m.parseBody(b)
}

// parseStartLine reads "METHOD URI SIP/2.0" or "SIP/2.0 NNN reason".
func (m *Message) parseStartLine(l []byte) error {
	if err := checkLine(l); err != nil {
		return ErrStartLine
	}
	if rest, ok := bytes.CutPrefix(l, []byte("SIP/2.0 ")); ok {
		if len(rest) < 3 || len(rest) > 3 && rest[3] != ' ' {
			return ErrStartLine
		}
		code, ok := atoi(rest[:3], 999)
		if !ok || code < 100 {
			return ErrStartLine
		}
		m.Status = code
		return nil
	}
	method, rest, ok := bytes.Cut(l, []byte(" "))
	uri, version, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok || !ok2 || !isToken(method) || len(method) > maxToken || string(version) != "SIP/2.0" {
		return ErrStartLine
	}
	m.Request = true
	m.Method = method
	hp, ok := parseURI(uri, offsetIn(l, uri))
	if !ok {
		return ErrStartLine
	}
	m.RequestURI = hp
	return nil
}

// parseHeader reads one header line that starts at offset base of the
// payload.
func (m *Message) parseHeader(line []byte, base int, seen *[hOther]bool) error {
	if err := checkLine(line); err != nil {
		return err
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	name = bytes.TrimRight(name, " \t")
	if !ok || !isToken(name) {
		return ErrHeader // also a folded continuation line, which starts with white space
	}
	value = bytes.Trim(value, " \t")
	vbase := base + offsetIn(line, value)
	h := headerIndex(name)
	if h == hOther {
		return nil
	}
	if seen[h] && h != hVia && h != hContact {
		return ErrDuplicate
	}
	first := !seen[h]
	seen[h] = true
	switch h {
	case hVia:
		return m.parseVia(value, vbase)
	case hFrom, hTo:
		tag, ok := headerTag(value)
		if !ok {
			return ErrHeader
		}
		if h == hFrom {
			m.FromTag = tag
		} else {
			m.ToTag = tag
		}
	case hCallID:
		if len(value) == 0 || len(value) > maxToken || bytes.ContainsAny(value, " \t") {
			return ErrHeader
		}
		m.CallID = value
	case hCSeq:
		num, method, ok := bytes.Cut(value, []byte(" "))
		method = bytes.TrimLeft(method, " \t")
		n, ok2 := atoi(num, 1<<31-1)
		if !ok || !ok2 || !isToken(method) || len(method) > maxToken {
			return ErrHeader
		}
		m.CSeq, m.CSeqMethod = uint32(n), method
	case hContact:
		if first && !(len(value) == 1 && value[0] == '*') {
			hp, ok := parseURI(contactURI(value), vbase+offsetIn(value, contactURI(value)))
			if !ok {
				return ErrHeader
			}
			m.Contact, m.HasContact = hp, true
		}
	case hContentLength:
		if _, ok := atoi(value, MaxMessageSize); !ok {
			return ErrContentLength
		}
		m.ContentLen = span{vbase, vbase + len(value)}
	case hContentType:
		mt, _, _ := bytes.Cut(value, []byte(";"))
		m.SDPBody = asciiEqualFold(bytes.TrimSpace(mt), "application/sdp")
	}
	return nil
}

// parseVia reads one Via header value: one or more comma-separated
// "SIP/2.0/UDP host[:port][;params]".
func (m *Message) parseVia(value []byte, base int) error {
	if len(value) == 0 {
		return ErrHeader
	}
	for len(value) > 0 {
		one, rest, _ := bytes.Cut(value, []byte(","))
		if m.NumVias == MaxVias {
			return ErrTooMany
		}
		obase := base + offsetIn(value, one)
		one = bytes.Trim(one, " \t")
		obase2 := obase
		if len(one) > 0 {
			obase2 = base + offsetIn(value, one)
		}
		proto, sentBy, ok := bytes.Cut(one, []byte(" "))
		if !ok || !hasPrefixFold(proto, "SIP/2.0/") || !isToken(proto[8:]) {
			return ErrHeader
		}
		sentBy = bytes.TrimLeft(sentBy, " \t")
		sb, params, _ := bytes.Cut(sentBy, []byte(";"))
		sb = bytes.TrimRight(sb, " \t")
		hp, ok := parseHostPort(sb, obase2+offsetIn(one, sb))
		if !ok {
			return ErrHeader
		}
		if m.NumVias == 0 {
			m.Branch = param(params, "branch")
			if len(m.Branch) == 0 || len(m.Branch) > maxToken || !isToken(m.Branch) {
				return ErrHeader
			}
		}
		m.Vias[m.NumVias] = hp
		m.NumVias++
		value = rest
	}
	return nil
}

// parseBody checks Content-Length against the body and parses an SDP one.
func (m *Message) parseBody(b []byte) error {
	body := b[m.BodyOff:]
	if m.ContentLen.ok() {
		n, _ := atoi(m.ContentLen.of(b), MaxMessageSize)
		if n != len(body) {
			return ErrContentLength
		}
	}
	if !m.SDPBody || len(body) == 0 {
		m.SDPBody = false
		return nil
	}
	return m.SDP.parse(body, m.BodyOff)
}

// headerTag returns the tag parameter of a From or To value ("name
// <uri>;tag=x" or "uri;tag=x"), empty when there is none; ok is false
// when the value is not a name-addr or addr-spec at all.
func headerTag(v []byte) (tag []byte, ok bool) {
	params := v
	if i := bytes.IndexByte(v, '<'); i >= 0 {
		j := bytes.IndexByte(v[i:], '>')
		if j < 0 {
			return nil, false
		}
		params = v[i+j+1:]
	} else if _, p, found := bytes.Cut(v, []byte(";")); found {
		params = p
	} else {
		params = nil
	}
	tag = param(params, "tag")
	if len(tag) > maxToken || len(tag) > 0 && !isToken(tag) {
		return nil, false
	}
	return tag, true
}

// contactURI returns the URI of a Contact value: what is inside <> or,
// without them, everything up to the first ';' or ','.
func contactURI(v []byte) []byte {
	if i := bytes.IndexByte(v, '<'); i >= 0 {
		if j := bytes.IndexByte(v[i:], '>'); j > 0 {
			return v[i+1 : i+j]
		}
		return nil
	}
	if i := bytes.IndexAny(v, ";,"); i >= 0 {
		return v[:i]
	}
	return v
}

// parseURI reads the host[:port] of "sip:[user@]host[:port][;params]"
// (or sips:); base is the URI's offset in the payload.
func parseURI(u []byte, base int) (HostPort, bool) {
	var rest []byte
	var ok bool
	if rest, ok = cutPrefixFold(u, "sip:"); !ok {
		if rest, ok = cutPrefixFold(u, "sips:"); !ok {
			return HostPort{}, false
		}
	}
	if i := bytes.IndexAny(rest, ";?>"); i >= 0 {
		rest = rest[:i]
	}
	if i := bytes.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	return parseHostPort(rest, base+offsetIn(u, rest))
}

// parseHostPort reads "host[:port]" that starts at offset base.
func parseHostPort(b []byte, base int) (HostPort, bool) {
	host, port, hasPort := bytes.Cut(b, []byte(":"))
	if len(host) == 0 || len(host) > maxToken || !isHostChars(host) {
		return HostPort{}, false
	}
	hp := HostPort{Host: span{base, base + len(host)}}
	hp.Addr, hp.IsIP = parseIPv4(host)
	if hasPort {
		n, ok := atoi(port, 65535)
		if !ok || n == 0 {
			return HostPort{}, false
		}
		hp.Port = uint16(n)
		o := base + len(host) + 1
		hp.PortText = span{o, o + len(port)}
	}
	return hp, true
}

// param returns the value of ";name=value" among params (case-insensitive
// name), or nil.
func param(params []byte, name string) []byte {
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte(";"))
		k, v, _ := bytes.Cut(bytes.TrimSpace(p), []byte("="))
		if asciiEqualFold(bytes.TrimSpace(k), name) {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}

// checkLine rejects control bytes (a bare CR or LF is how headers are
// injected) in one line.
func checkLine(l []byte) error {
	if len(l) == 0 {
		return ErrHeader
	}
	for _, c := range l {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return ErrHeader
		}
	}
	return nil
}

// isToken reports whether b is an RFC 3261 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case bytes.IndexByte([]byte("-.!%*_+`'~"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isHostChars(b []byte) bool {
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// atoi parses a decimal number of at most max, digits only.
func atoi(b []byte, max int) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= max
}

// parseIPv4 parses a dotted-quad literal.
func parseIPv4(b []byte) (a [4]byte, ok bool) {
	for i := range 4 {
		var part []byte
		var found bool
		part, b, found = bytes.Cut(b, []byte("."))
		if found != (i < 3) || len(part) > 3 || len(part) > 1 && part[0] == '0' {
			return [4]byte{}, false
		}
		n, ok := atoi(part, 255)
		if !ok {
			return [4]byte{}, false
		}
		a[i] = byte(n)
	}
	return a, true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 0x20
		}
		if 'A' <= d && d <= 'Z' {
			d += 0x20
		}
		if c != d {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && asciiEqualFold(b[:len(p)], p)
}

func cutPrefixFold(b []byte, p string) ([]byte, bool) {
	if !hasPrefixFold(b, p) {
		return b, false
	}
	return b[len(p):], true
}

// offsetIn returns where sub (a subslice of b) starts in b.
func offsetIn(b, sub []byte) int {
	if sub == nil {
		return 0
	}
	return cap(b) - cap(sub)
}
