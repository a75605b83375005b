package sip

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sippMessages reads the messages of a sipp -trace_msg log: each block
// says how many bytes the message had, and the message follows a blank
// line. testdata/sipp_uac_messages.log is sipp 3.6.1's built-in uac
// scenario against its built-in uas on loopback (sipp -sn uas -i
// 127.0.0.1 -p 5070 -m 1 -trace_msg; sipp -sn uac 127.0.0.1:5070 -m 1 -i
// 127.0.0.1 -p 5071 -trace_msg), as the uac side logged it.
func sippMessages(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`UDP message (?:sent \((\d+) bytes\):|received \[(\d+)\] bytes :)\n\n`)
	var out [][]byte
	for _, loc := range re.FindAllSubmatchIndex(b, -1) {
		g := 2 // the sent form's group, else the received form's
		if loc[2] < 0 {
			g = 4
		}
		n, _ := strconv.Atoi(string(b[loc[g]:loc[g+1]]))
		if loc[1]+n > len(b) {
			t.Fatalf("sipp log block claims %d bytes past the end", n)
		}
		out = append(out, b[loc[1]:loc[1]+n])
	}
	return out
}

// TestSippCall parses every message sipp's uac/uas scenario exchanged and
// drives the inspector through the call: all six pass, the INVITE and
// the 200 open RTP/RTCP pinholes at sipp's media ports (6004 and 6000),
// and the BYE's 200 closes them.
func TestSippCall(t *testing.T) {
	msgs := sippMessages(t, "testdata/sipp_uac_messages.log")
	if len(msgs) != 6 {
		t.Fatalf("%d messages in the sipp log, want 6 (INVITE 180 200 ACK BYE 200)", len(msgs))
	}
	var m Message
	for i, b := range msgs {
		if err := Parse(b, &m); err != nil {
			t.Fatalf("message %d: %v\n%s", i, err, b)
		}
	}
	if err := Parse(msgs[0], &m); err != nil || string(m.CallID) != "1-23323@127.0.0.1" || string(m.Branch) != "z9hG4bK-23323-1-0" ||
		string(m.FromTag) != "23323SIPpTag001" || m.SDP.NumMedia != 1 || m.SDP.Media[0].Port != 6004 || !m.HasContact || m.Contact.Port != 5071 {
		t.Errorf("INVITE parsed as %+v", m)
	}
	in := New(Config{})
	var opened, closed int
	for i, b := range msgs {
		r := in.Inspect(b, t0.Add(time.Duration(i)*time.Second))
		if !r.Pass() {
			t.Fatalf("message %d dropped: %v\n%s", i, r.Drop, b)
		}
		opened += len(r.Open)
		closed += len(r.Close)
	}
	if opened != 4 || closed != 4 || in.state("1-23323@127.0.0.1") != StateEnded {
		t.Errorf("opened %d closed %d state %v; want 4, 4, ended", opened, closed, in.state("1-23323@127.0.0.1"))
	}
}

// TestCompactForms parses a message written with RFC 3261's compact
// header names.
func TestCompactForms(t *testing.T) {
	b := []byte("INVITE sip:bob@192.0.2.20 SIP/2.0\r\n" +
		"v: SIP/2.0/UDP 10.1.1.10:5061;branch=z9hG4bK-c\r\n" +
		"f: <sip:a@10.1.1.10>;tag=1\r\n" +
		"t: <sip:b@192.0.2.20>\r\n" +
		"i: compact@x\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"m: <sip:a@10.1.1.10:5061>\r\n" +
		"c: application/sdp\r\n" +
		"l: 49\r\n\r\n" +
		"v=0\r\nc=IN IP4 10.1.1.10\r\nm=audio 4000 RTP/AVP 0\r\n")
	var m Message
	if err := Parse(b, &m); err != nil {
		t.Fatal(err)
	}
	if string(m.CallID) != "compact@x" || m.Contact.Port != 5061 || !m.SDPBody || m.SDP.Media[0].Port != 4000 || m.NumVias != 1 {
		t.Errorf("parsed as %+v", m)
	}
}

// TestHostile: malformed and hostile messages are dropped as
// sip-malformed and change no state, even in the middle of a call.
func TestHostile(t *testing.T) {
	c := newCall()
	good := string(c.request("INVITE", 2, "z9hG4bK-5", true, true, sdp(c.callerIP, 7000)))
	cases := map[string]string{
		"huge Content-Length":   clRe.ReplaceAllString(good, "Content-Length: 99999999"),
		"short Content-Length":  clRe.ReplaceAllString(good, "Content-Length: 10"),
		"long Content-Length":   clRe.ReplaceAllString(good, "Content-Length: 400"),
		"negative length":       clRe.ReplaceAllString(good, "Content-Length: -1"),
		"two Content-Lengths":   clRe.ReplaceAllString(good, "Content-Length: 129\r\nl: 129"),
		"no Call-ID":            strings.Replace(good, "Call-ID: "+c.callID+"\r\n", "", 1),
		"no CSeq":               strings.Replace(good, "CSeq: 2 INVITE\r\n", "", 1),
		"no Via":                regexp.MustCompile(`Via: [^\r]*\r\n`).ReplaceAllString(good, ""),
		"no branch":             strings.Replace(good, ";branch=z9hG4bK-5", "", 1),
		"no From tag":           strings.Replace(good, ";tag="+c.callerTag, "", 1),
		"two Call-IDs":          strings.Replace(good, "Call-ID: ", "Call-ID: x@y\r\nCall-ID: ", 1),
		"non-numeric m= port":   strings.Replace(good, "m=audio 7000 ", "m=audio 70a0 ", 1),
		"m= port too big":       strings.Replace(good, "m=audio 7000 ", "m=audio 70000", 1),
		"non-numeric Via port":  strings.Replace(good, "10.1.1.10:5061;branch", "10.1.1.10:50x1;branch", 1),
		"Via port 0":            strings.Replace(good, "10.1.1.10:5061;branch", "10.1.1.10:0;branch", 1),
		"bare LF injection":     strings.Replace(good, "Max-Forwards: 70", "Max-Forwards: 70\nCall-ID: injected", 1),
		"bare CR injection":     strings.Replace(good, "Max-Forwards: 70", "Max-Forwards: 70\rX: y", 1),
		"NUL in header":         strings.Replace(good, "Max-Forwards: 70", "Max-Forwards: 7\x000", 1),
		"folded header":         strings.Replace(good, "Max-Forwards: 70", "Max-Forwards:\r\n 70", 1),
		"CSeq method mismatch":  strings.Replace(good, "CSeq: 2 INVITE", "CSeq: 2 BYE", 1),
		"bad version":           strings.Replace(good, "SIP/2.0\r\n", "SIP/3.0\r\n", 1),
		"status not numeric":    "SIP/2.0 2x0 OK\r\n" + good[strings.Index(good, "\r\n")+2:],
		"no header end":         strings.Replace(good, "\r\n\r\n", "\r\n", 1),
		"IPv6 SDP":              strings.Replace(good, "c=IN IP4 10.1.1.10", "c=IN IP6 ::1", 1),
		"SDP without v=":        strings.Replace(good, "v=0\r\n", "x=0\r\n", 1),
		"too many headers":      strings.Replace(good, "Max-Forwards: 70", strings.Repeat("X-A: b\r\n", MaxHeaders)+"Max-Forwards: 70", 1),
		"too large":             strings.Replace(good, "Max-Forwards: 70", "X-Pad: "+strings.Repeat("a", MaxMessageSize), 1),
		"Call-ID with space":    strings.Replace(good, "Call-ID: "+c.callID, "Call-ID: a b", 1),
		"tag with angle":        strings.Replace(good, ";tag="+c.callerTag, ";tag=a<b", 1),
		"unclosed angle in To":  strings.Replace(good, "To: <sip:service@192.0.2.20>", "To: <sip:service@192.0.2.20", 1),
		"bad Contact URI":       strings.Replace(good, "Contact: sip:sipp@10.1.1.10:5061", "Contact: http://x", 1),
		"too many media":        strings.Replace(good, "a=rtpmap", strings.Repeat("m=audio 8000 RTP/AVP 0\r\n", MaxMedia)+"a=rtpmap", 1),
		"empty payload garbage": "\r\n\r\n\r\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			in := New(Config{})
			establish(t, in, c)
			before := in.Digests()
			// Keep Content-Length right unless the case is about it.
			b := []byte(text)
			if !strings.Contains(name, "ength") {
				b = fixLength(b)
			}
			step(t, in, b, time.Minute, DropMalformed)
			if in.Digests() != before {
				t.Error("a malformed message changed state")
			}
		})
	}
	// The unmodified message is fine.
	in := New(Config{})
	establish(t, in, c)
	step(t, in, []byte(good), time.Minute, dropNone)
}

var clRe = regexp.MustCompile(`Content-Length: \d+`)

// fixLength sets Content-Length to the body's length, if both exist.
func fixLength(b []byte) []byte {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return b
	}
	body := len(b) - i - 4
	return regexp.MustCompile(`Content-Length: \d+`).ReplaceAll(b, []byte("Content-Length: "+strconv.Itoa(body)))
}

// TestParseAllocs: Parse allocates nothing.
func TestParseAllocs(t *testing.T) {
	msgs := sippMessages(t, "testdata/sipp_uac_messages.log")
	var m Message
	if n := testing.AllocsPerRun(100, func() { _ = Parse(msgs[0], &m) }); n != 0 {
		t.Errorf("Parse allocates %v times per message", n)
	}
}
