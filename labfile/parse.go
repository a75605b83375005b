package labfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds a lab file; a larger one is certainly a mistake.
const MaxFileSize = 1 << 20

// Problem is one thing wrong in a lab file, with where it is.
type Problem struct {
	File  string // file name as given
	Line  int    // 1-based; 0 when the problem has no single place
	Field string // dotted path, e.g. nodes.client1.interfaces.eth0.address
	Msg   string // what is wrong and what was expected
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a lab file; it is the error type of
// Parse and Validate, so that a user sees all mistakes at once.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Positions maps a dotted field path to the line it was written on.
type Positions map[string]int

// line returns the line of path, or of its nearest written parent.
func (pos Positions) Line(path string) int {
	for path != "" {
		if l, ok := pos[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Parse reads a lab file strictly: unknown keys, wrong types and bad
// durations are problems naming file, line and field. It does not
// cross-check (that is Validate's job), but it returns the field positions
// so that Validate can name lines too.
func Parse(file string, data []byte) (*Spec, Positions, error) {
	if len(data) > MaxFileSize {
		return nil, nil, Problems{{File: file, Msg: fmt.Sprintf("file is %d bytes; a lab file may be at most %d", len(data), MaxFileSize)}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err == io.EOF {
		return nil, nil, Problems{{File: file, Msg: "empty file; expected a lab (name, nodes, links, ...)"}}
	} else if err != nil {
		return nil, nil, Problems{YAMLProblem(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, nil, Problems{{File: file, Line: extra.Line, Msg: "more than one YAML document; a lab file holds exactly one"}}
	}
	if len(doc.Content) == 0 {
		return nil, nil, Problems{{File: file, Msg: "empty file; expected a lab (name, nodes, links, ...)"}}
	}
	root := doc.Content[0]
	pos := Positions{}
	var probs Problems
	Walk(file, root, reflect.TypeOf(Spec{}), "", pos, &probs)
	if len(probs) > 0 {
		return nil, nil, probs
	}
	var spec Spec
	if err := root.Decode(&spec); err != nil {
		return nil, nil, Problems{YAMLProblem(file, err)}
	}
	return &spec, pos, nil
}

// Walk checks node against the Go type t (the shape Decode will fill),
// records the line of every field, and reports unknown keys and shape
// errors with their paths. It never panics on any YAML.
func Walk(file string, n *yaml.Node, t reflect.Type, path string, pos Positions, probs *Problems) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		if _, seen := pos[path]; !seen {
			pos[path] = n.Line
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	bad := func(expected string) {
		*probs = append(*probs, Problem{File: file, Line: n.Line, Field: path, Msg: fmt.Sprintf("expected %s, found %s", expected, describe(n))})
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value: the field stays unset
	}
	switch {
	case t == reflect.TypeOf(Duration(0)):
		if v, err := time.ParseDuration(n.Value); n.Kind != yaml.ScalarNode || err != nil || v < 0 {
			bad("a duration like 100ms, 2s or 5m")
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad("a mapping of fields")
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := join(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				*probs = append(*probs, Problem{File: file, Line: k.Line, Field: sub, Msg: unknownKeyMsg(k.Value, fields)})
				continue
			}
			pos[sub] = k.Line
			Walk(file, v, f.Type, sub, pos, probs)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			bad("a mapping")
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := join(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				*probs = append(*probs, Problem{File: file, Line: k.Line, Field: sub, Msg: fmt.Sprintf("duplicate key %q (first on line %d)", k.Value, first)})
				continue
			}
			seen[k.Value] = k.Line
			pos[sub] = k.Line
			Walk(file, v, t.Elem(), sub, pos, probs)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad("a list")
			return
		}
		for i, v := range n.Content {
			Walk(file, v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), pos, probs)
		}
	case t.Kind() == reflect.Int:
		if _, err := strconv.Atoi(n.Value); n.Kind != yaml.ScalarNode || err != nil {
			bad("a whole number")
		}
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
			bad("true or false")
		}
	default:
		if n.Kind != yaml.ScalarNode {
			bad("a single value")
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// yamlFields maps yaml keys to the struct fields they fill.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out[name] = f
	}
	return out
}

// unknownKeyMsg says that key is not a field and suggests the nearest one,
// so that a typo never passes silently and is quick to mend.
func unknownKeyMsg(key string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(key, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown field %q (did you mean %q?)", key, best)
	}
	return fmt.Sprintf("unknown field %q (expected one of: %s)", key, strings.Join(names, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// YAMLProblem turns a yaml library error into a Problem with a line.
func YAMLProblem(file string, err error) Problem {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		// "line 7: cannot unmarshal !!str `abc` into int"
		msg := te.Errors[0]
		var line int
		if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
			_, rest, _ := strings.Cut(msg, ": ")
			return Problem{File: file, Line: line, Msg: rest}
		}
		return Problem{File: file, Msg: msg}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		_, rest, _ := strings.Cut(msg, ": ")
		return Problem{File: file, Line: line, Msg: "not valid YAML: " + rest}
	}
	return Problem{File: file, Msg: "not valid YAML: " + msg}
}

// UnmarshalYAML reads a duration like "100ms"; the error names the value
// and the line, and what was expected.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration (expected like 100ms, 2s, 5m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}
