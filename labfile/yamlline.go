package labfile

import (
	"fmt"
	"strings"
)

// YAMLSyntaxProblem is YAMLProblem for a file that is not valid YAML, with
// the line mended. yaml.v3 names the line where the construct it was
// parsing began, counted from 0 for parser errors (so one line early), or
// where it noticed the mistake, which for a bad indent can be far above
// it. From the message and the text it finds the line a user must edit:
// the line of a flow collection ({ or [) left open, or the first line
// whose indentation breaks its block. When it cannot tell, it keeps the
// library's line.
func YAMLSyntaxProblem(file string, data []byte, err error) Problem {
	p := YAMLProblem(file, err)
	if p.Line == 0 {
		return p
	}
	lines := strings.Split(string(data), "\n")
	switch {
	case strings.Contains(p.Msg, "did not find expected ',' or '}'"):
		if l := unclosedFlow(lines, p.Line, '{'); l > 0 {
			p.Line = l
			p.Msg += " (this '{' is not closed)"
		}
	case strings.Contains(p.Msg, "did not find expected ',' or ']'"):
		if l := unclosedFlow(lines, p.Line, '['); l > 0 {
			p.Line = l
			p.Msg += " (this '[' is not closed)"
		}
	case isIndentMsg(p.Msg):
		if l, why := badIndent(lines, p.Line); l > 0 {
			p.Line = l
			p.Msg += " (" + why + ")"
		}
	}
	return p
}

// isIndentMsg says whether a yaml.v3 message is one that a wrongly
// indented line causes.
func isIndentMsg(msg string) bool {
	for _, s := range []string{
		"did not find expected key",
		"did not find expected '-' indicator",
		"mapping values are not allowed in this context",
		"block sequence entries are not allowed in this context",
		"did not find expected node content",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// unclosedFlow returns the 1-based line, at or after from (or on the line
// before it, should the library ever count from 1), on which a flow
// collection opened by open is still open at the end of the line; 0 if
// there is none. Brackets inside quotes and comments do not count.
func unclosedFlow(lines []string, from int, open byte) int {
	for l := max(from, 1); l <= len(lines) && l <= from+1; l++ {
		if opensFlow(lines[l-1], open) {
			return l
		}
	}
	return 0
}

// opensFlow says whether line leaves a flow collection opened by open
// unclosed: a bracket that starts a value (after ':', '-', ',', another
// bracket or the start of the line) and has no match on the line.
func opensFlow(line string, open byte) bool {
	var stack []byte
	var quote byte
	prev := byte(' ') // the last non-space byte outside a scalar, ' ' at the start
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			continue
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			i = len(line)
			continue
		case (c == '{' || c == '[') && (len(stack) > 0 || strings.IndexByte(" :-,[{", prev) >= 0):
			stack = append(stack, c)
		case (c == '}' || c == ']') && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
		if c != ' ' && c != '\t' {
			prev = c
		}
	}
	return len(stack) > 0 && stack[0] == open
}

// indentLevel is one open block: its column, and whether it holds list
// items, keys, or both (a list written under its key at the key's column,
// "links:\n- a").
type indentLevel struct {
	col       int
	seq, keys bool
}

// badIndent returns the first line at or after from whose indentation
// breaks the block structure, and why; 0 if none does. It follows block
// mappings and lists only: flow collections spanning lines and block
// scalars (| and >) are skipped, as their indentation is free.
func badIndent(lines []string, from int) (int, string) {
	var stack []indentLevel
	opened := false   // the previous line ends with "key:" and opens a block
	openedKey := -1   // the column of that key
	scalarAbove := -1 // inside a block scalar: the column of its key
	depth := 0        // open flow collections carried from earlier lines
	for i, raw := range lines {
		text := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimLeft(text, " ")
		col := len(text) - len(trimmed)
		if trimmed == "" || trimmed[0] == '#' || trimmed == "---" {
			continue
		}
		if scalarAbove >= 0 && col > scalarAbove {
			continue
		}
		scalarAbove = -1
		if depth > 0 {
			depth += flowDelta(trimmed)
			continue
		}
		isItem := trimmed == "-" || strings.HasPrefix(trimmed, "- ")
		why := ""
		switch top := len(stack) - 1; {
		case top < 0:
			stack = append(stack, indentLevel{col: col})
		case col > stack[top].col:
			if !opened {
				why = fmt.Sprintf("indented to column %d under a line that opens no block", col+1)
			}
			stack = append(stack, indentLevel{col: col})
		default:
			for len(stack) > 1 && stack[len(stack)-1].col > col {
				stack = stack[:len(stack)-1]
			}
			if stack[len(stack)-1].col != col {
				why = fmt.Sprintf("indented to column %d, which matches no enclosing block", col+1)
			}
		}
		lv := &stack[len(stack)-1]
		switch {
		case why != "":
		case isItem && !lv.seq && lv.keys && !(opened && openedKey == col):
			why = "a list item among keys"
		case !isItem && lv.seq && !lv.keys:
			why = "a key among list items (expected \"- \")"
		}
		if why != "" && i+1 >= from {
			return i + 1, why
		}
		if isItem {
			lv.seq = true
			content := strings.TrimLeft(trimmed[1:], " ")
			ccol := col + len(trimmed) - len(content)
			if content != "" && !strings.HasPrefix(content, "#") {
				stack = append(stack, indentLevel{col: ccol, keys: true})
			}
			trimmed = content
			col = ccol
		} else {
			lv.keys = true
		}
		value := stripComment(trimmed)
		opened = strings.HasSuffix(value, ":") || value == "" || value == "-"
		openedKey = col
		if strings.HasSuffix(value, "|") || strings.HasSuffix(value, ">") || strings.Contains(value, ": |") || strings.Contains(value, ": >") {
			scalarAbove = col
		}
		depth = max(flowDelta(value), 0)
	}
	return 0, ""
}

// stripComment drops a trailing " # comment" from a line outside quotes.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return strings.TrimRight(s[:i], " ")
		}
	}
	return s
}

// flowDelta is how many flow collections s opens minus how many it
// closes, outside quotes and comments.
func flowDelta(s string) int {
	s = stripComment(s)
	var quote byte
	d := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{' || c == '[':
			d++
		case c == '}' || c == ']':
			d--
		}
	}
	return d
}
