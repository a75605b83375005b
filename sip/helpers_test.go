package sip

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// t0 is the tests' clock origin; tests pass times, they never read the clock.
var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// call describes one dialog for the message builders, in sipp's words.
type call struct {
	callID             string
	callerTag          string
	calleeTag          string
	callerIP, calleeIP string
	callerPort         int // SIP port of the caller
}

func newCall() call {
	return call{callID: "1-23323@10.1.1.10", callerTag: "23323SIPpTag001", calleeTag: "23319SIPpTag011",
		callerIP: "10.1.1.10", calleeIP: "192.0.2.20", callerPort: 5061}
}

func sdp(ip string, port int) string {
	return "v=0\r\no=user1 53655765 2353687637 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip +
		"\r\nt=0 0\r\nm=audio " + fmt.Sprint(port) + " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
}

// msg assembles a message from its start line, headers and body, with a
// correct Content-Length.
func msg(start string, headers []string, body string) []byte {
	var b strings.Builder
	b.WriteString(start + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return []byte(b.String())
}

// request builds a request from the caller (fromCaller) or the callee.
func (c call) request(method string, cseq int, branch string, fromCaller, withToTag bool, body string) []byte {
	fromIP, toIP, fromTag, toTag := c.callerIP, c.calleeIP, c.callerTag, c.calleeTag
	port := c.callerPort
	if !fromCaller {
		fromIP, toIP, fromTag, toTag = c.calleeIP, c.callerIP, c.calleeTag, c.callerTag
		port = 5060
	}
	to := "To: <sip:service@" + toIP + ">"
	if withToTag {
		to += ";tag=" + toTag
	}
	return msg(method+" sip:service@"+toIP+":5060 SIP/2.0", []string{
		fmt.Sprintf("Via: SIP/2.0/UDP %s:%d;branch=%s", fromIP, port, branch),
		"From: sipp <sip:sipp@" + fromIP + ">;tag=" + fromTag,
		to,
		"Call-ID: " + c.callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		fmt.Sprintf("Contact: sip:sipp@%s:%d", fromIP, port),
		"Max-Forwards: 70",
	}, body)
}

// response builds the response to a request from the caller (toCaller) or
// the callee.
func (c call) response(status string, method string, cseq int, branch string, toCaller, withToTag bool, body string) []byte {
	reqIP, fromTag, toTag, respIP := c.callerIP, c.callerTag, c.calleeTag, c.calleeIP
	port := c.callerPort
	if !toCaller {
		reqIP, fromTag, toTag, respIP = c.calleeIP, c.calleeTag, c.callerTag, c.callerIP
		port = 5060
	}
	to := "To: <sip:service@" + respIP + ">"
	if withToTag {
		to += ";tag=" + toTag
	}
	return msg("SIP/2.0 "+status, []string{
		fmt.Sprintf("Via: SIP/2.0/UDP %s:%d;branch=%s", reqIP, port, branch),
		"From: sipp <sip:sipp@" + reqIP + ">;tag=" + fromTag,
		to,
		"Call-ID: " + c.callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		"Contact: <sip:" + respIP + ":5060;transport=UDP>",
	}, body)
}

// step feeds one message and fails the test unless its verdict is want.
func step(t *testing.T, in *Inspector, b []byte, at time.Duration, want DropReason) Result {
	t.Helper()
	r := in.Inspect(b, t0.Add(at))
	if r.Drop != want {
		t.Fatalf("verdict %v, want %v, for:\n%s", r.Drop, want, b)
	}
	return r
}

func pin(ip string, port uint16, timeout time.Duration) Pinhole {
	a, ok := parseIPv4([]byte(ip))
	if !ok {
		panic(ip)
	}
	return Pinhole{Proto: ProtoUDP, Dst: a, DstPort: port, Timeout: timeout}
}

func (in *Inspector) state(callID string) State {
	in.mu.Lock()
	defer in.mu.Unlock()
	if s := in.sessions[callID]; s != nil {
		return s.rec.State
	}
	return 0
}
