package sip

import "bytes"

// SDP is what inspection reads of a session description (RFC 4566): the
// origin address, the session-level connection address and each media
// line's port with its own connection address, if any. Spans are offsets
// into the whole SIP payload.
type SDP struct {
	Origin     Addr // o= unicast address (the origin may name a host; then IsIP is false)
	Connection Addr // session-level c=
	Media      [MaxMedia]Media
	NumMedia   int
}

// Addr is an address field of SDP.
type Addr struct {
	Text span
	IP   [4]byte
	IsIP bool
}

// Media is one m= line.
type Media struct {
	Kind       MediaKind
	Port       uint16
	PortText   span
	Connection Addr // media-level c=, absent if none
}

// MediaKind is the media type of an m= line.
type MediaKind uint8

// Media kinds; inspection opens pinholes for audio and video.
const (
	MediaOther MediaKind = iota
	MediaAudio
	MediaVideo
)

// Address returns the connection address that applies to media i.
func (s *SDP) Address(i int) Addr {
	if s.Media[i].Connection.Text.ok() {
		return s.Media[i].Connection
	}
	return s.Connection
}

// parse reads body, which starts at offset base of the payload. Lines end
// in CRLF or LF (RFC 4566 §5 asks parsers to accept both).
func (s *SDP) parse(body []byte, base int) error {
	pos := 0
	first := true
	for pos < len(body) {
		e := bytes.IndexByte(body[pos:], '\n')
		if e < 0 {
			e = len(body) - pos
		}
		line := bytes.TrimSuffix(body[pos:pos+e], []byte("\r"))
		lbase := base + pos
		pos += e + 1
		if len(line) == 0 {
			continue
		}
		if len(line) < 2 || line[1] != '=' || checkLine(line) != nil {
			return ErrSDP
		}
		if first && string(line) != "v=0" {
			return ErrSDP
		}
		first = false
		if err := s.parseLine(line, lbase); err != nil {
			return err
		}
	}
	if first {
		return ErrSDP
	}
	return nil
}

func (s *SDP) parseLine(line []byte, base int) error {
	v := line[2:]
	vbase := base + 2
	switch line[0] {
	case 'o':
		f, n := fields(v)
		if n != 6 || string(f[3]) != "IN" || string(f[4]) != "IP4" {
			return ErrSDP
		}
		a, ok := parseAddr(f[5], vbase+offsetIn(v, f[5]), true)
		if !ok {
			return ErrSDP
		}
		s.Origin = a
	case 'c':
		f, n := fields(v)
		if n != 3 || string(f[0]) != "IN" || string(f[1]) != "IP4" {
			return ErrSDP
		}
		addr, _, _ := bytes.Cut(f[2], []byte("/")) // a multicast TTL may follow
		a, ok := parseAddr(addr, vbase+offsetIn(v, addr), false)
		if !ok {
			return ErrSDP
		}
		if s.NumMedia == 0 {
			if s.Connection.Text.ok() {
				return ErrSDP
			}
			s.Connection = a
		} else {
			s.Media[s.NumMedia-1].Connection = a
		}
	case 'm':
		return s.parseMedia(v, vbase)
	}
	return nil
}

// parseMedia reads "media port[/count] proto fmt...".
func (s *SDP) parseMedia(v []byte, vbase int) error {
	f, n := fields(v)
	if n < 4 || s.NumMedia == MaxMedia {
		return ErrSDP
	}
	portText, count, hasCount := bytes.Cut(f[1], []byte("/"))
	port, ok := atoi(portText, 65535)
	if !ok || hasCount {
		if n, ok2 := atoi(count, 2); !ok2 || n == 0 {
			return ErrSDP
		}
		if !ok {
			return ErrSDP
		}
	}
	m := &s.Media[s.NumMedia]
	s.NumMedia++
	switch string(f[0]) {
	case "audio":
		m.Kind = MediaAudio
	case "video":
		m.Kind = MediaVideo
	}
	m.Port = uint16(port)
	o := vbase + offsetIn(v, portText)
	m.PortText = span{o, o + len(portText)}
	return nil
}

// parseAddr reads an IPv4 literal; hostOK admits a host name (o= may
// carry one, which inspection then leaves alone).
func parseAddr(b []byte, base int, hostOK bool) (Addr, bool) {
	a := Addr{Text: span{base, base + len(b)}}
	var ok bool
	if a.IP, ok = parseIPv4(b); ok {
		a.IsIP = true
		return a, true
	}
	return a, hostOK && len(b) > 0 && len(b) <= maxToken && isHostChars(b)
}

// fields splits v on single spaces, at most 8 fields (the rest stay in
// the last), without allocating.
func fields(v []byte) (buf [8][]byte, n int) {
	for len(v) > 0 && n < len(buf)-1 {
		var f []byte
		var found bool
		f, v, found = bytes.Cut(v, []byte(" "))
		if len(f) == 0 {
			return buf, 0
		}
		buf[n] = f
		n++
		if !found {
			return buf, n
		}
	}
	if len(v) > 0 {
		buf[n] = v
		n++
	}
	return buf, n
}
