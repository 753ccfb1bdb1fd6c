package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// yamlLineRE pulls the line out of a yaml syntax error.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

// decoder walks a yaml.Node tree into the config structs itself, instead
// of Node.Decode with KnownFields, because that stops at the first
// problem and we must list all of them, each with its line.
type decoder struct {
	c     *Config
	probs []*Problem
}

// decode fills c from data, recording key lines in c.pos. ok is false when
// the document cannot be walked at all (a syntax error or a non-mapping
// root).
// emptyFile explains why a file without settings is refused.
const emptyFile = "the file has no settings; to serve no sites, say so with \"sites: []\""

func (c *Config) decode(data []byte) (probs []*Problem, ok bool) {
	c.pos = map[string]int{}
	c.bad = map[string]bool{}
	d := &decoder{c: c}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			// Most likely a file caught while being rewritten, or a
			// mistake: applied, it would stop every site.
			d.problem(1, "", ErrMissing, emptyFile)
			return d.probs, false
		}
		return []*Problem{d.syntax(data, err)}, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return []*Problem{d.syntax(data, err)}, false
		}
		line := extra.Line
		if len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		d.problem(line, "", ErrBadValue, "more than one YAML document; put everything in one")
	}

	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind == yaml.DocumentNode || isNull(root) {
		d.problem(max(root.Line, 1), "", ErrMissing, emptyFile)
		return d.probs, false
	}
	if resolve(root).Kind != yaml.MappingNode {
		d.problem(root.Line, "", ErrBadValue, "want a mapping with server and sites at the top level")
		return d.probs, false
	}
	d.walk(root, reflect.ValueOf(c).Elem(), "")
	for i := range c.Sites {
		c.Sites[i].Line = c.pos[fmt.Sprintf("sites[%d]", i)]
	}
	return d.probs, true
}

func (d *decoder) syntax(data []byte, err error) *Problem {
	p := &Problem{File: d.c.File, Msg: err.Error(), Err: ErrBadValue, cause: err}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.Line = offendingLine(data, line, m[2])
		p.Msg = "yaml: " + m[2]
	}
	return p
}

// offendingLine finds the line a YAML syntax error is on. yaml.v3 reports
// the line of the error's context, which is where the enclosing block
// starts (a list on line 5 for a badly indented key on line 9), and keeps
// the position of the token it rejected to itself. The document cut after
// the offending line fails with the same message, and cut before it does
// not: the first such cut, at or after the reported line, is found by
// bisection (a few parses, however long the file). When no cut reproduces
// the message, the reported line stands.
func offendingLine(data []byte, reported int, msg string) int {
	var ends []int // ends[i] is the offset just past line i+1
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	if reported < 1 || reported > len(ends) {
		return reported
	}
	fails := func(line int) bool {
		err := parseAll(data[:ends[line-1]])
		if err == nil {
			return false
		}
		m := yamlLineRE.FindStringSubmatch(err.Error())
		return m != nil && m[2] == msg
	}
	// The whole document fails so; the answer is in [lo, hi].
	lo, hi := reported, len(ends)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo == len(ends) && lo != reported && !fails(lo) {
		return reported // the message is not reproduced at all
	}
	return lo
}

// parseAll parses every document of data and returns the first error.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (d *decoder) problem(line int, key string, sentinel error, msg string) {
	d.probs = append(d.probs, &Problem{File: d.c.File, Line: line, Key: key, Msg: msg, Err: sentinel})
}

// badValue records a value that did not decode; Validate then skips key.
func (d *decoder) badValue(n *yaml.Node, key, format string, args ...any) {
	d.c.bad[key] = true
	d.problem(n.Line, key, ErrBadValue, fmt.Sprintf(format, args...))
}

// resolve follows aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// walk decodes n into v; path is the key path used in messages.
func (d *decoder) walk(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if isNull(n) {
		return // an empty value leaves the zero value, so defaults apply
	}
	switch t := v.Type(); {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			d.badValue(n, path, "want a duration such as 90s, 5m or 1h30m")
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.badValue(n, path, "bad duration %q: want a number with a unit (ms, s, m, h), such as 90s, 5m or 1h30m", n.Value)
			return
		}
		v.SetInt(int64(dur))
	case t == byteSizeType:
		if n.Kind != yaml.ScalarNode {
			d.badValue(n, path, "want a size such as 512MiB or 1GiB")
			return
		}
		sz, err := ParseByteSize(n.Value)
		if err != nil {
			d.badValue(n, path, "%v", err)
			return
		}
		v.SetInt(int64(sz))
	case t.Kind() == reflect.Struct:
		d.walkStruct(n, v, path)
	case t.Kind() == reflect.Pointer:
		elem := reflect.New(t.Elem())
		d.walk(n, elem.Elem(), path)
		if !d.c.bad[path] {
			v.Set(elem)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.badValue(n, path, "want a list")
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.c.pos[p] = resolve(item).Line
			d.walk(item, s.Index(i), p)
		}
		v.Set(s)
	case t.Kind() == reflect.Map:
		d.walkMap(n, v, path)
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.badValue(n, path, "want a string")
			return
		}
		v.SetString(n.Value) // the literal text, so "1.10" stays "1.10"
	case t.Kind() == reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.badValue(n, path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case t.Kind() == reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.badValue(n, path, "want an integer, got %s", describe(n))
			return
		}
		v.SetInt(int64(i))
	default:
		panic(fmt.Sprintf("config: no decoder for %s", t)) // a programming error in this package
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// walkStruct decodes a mapping into a struct, matching keys to yaml tags
// and reporting unknown and repeated keys.
func (d *decoder) walkStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.badValue(n, path, "want a mapping, got %s", describe(n))
		return
	}
	fields := map[string]int{}
	for i := range v.NumField() {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := resolve(n.Content[i]), n.Content[i+1]
		key := join(path, kn.Value)
		if kn.Kind != yaml.ScalarNode {
			d.problem(kn.Line, path, ErrUnknownKey, fmt.Sprintf("unknown key %s", describe(kn)))
			continue
		}
		if kn.Value == "<<" {
			d.problem(kn.Line, key, ErrUnknownKey, "merge keys are not supported; repeat the settings")
			continue
		}
		if first, dup := seen[kn.Value]; dup {
			d.c.bad[key] = true
			d.problem(kn.Line, key, ErrBadValue, fmt.Sprintf("key repeated (first at line %d)", first))
			continue
		}
		seen[kn.Value] = kn.Line
		fi, ok := fields[kn.Value]
		if !ok {
			d.problem(kn.Line, key, ErrUnknownKey, "unknown key")
			continue
		}
		d.c.pos[key] = kn.Line
		d.walk(vn, v.Field(fi), key)
	}
}

// walkMap decodes a mapping of strings (build.env).
func (d *decoder) walkMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.badValue(n, path, "want a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(t, len(n.Content)/2))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := resolve(n.Content[i]), n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			d.problem(kn.Line, path, ErrBadValue, fmt.Sprintf("want string keys, got %s", describe(kn)))
			continue
		}
		key := mapKey(path, kn.Value)
		if first, dup := seen[kn.Value]; dup {
			d.c.bad[key] = true
			d.problem(kn.Line, key, ErrBadValue, fmt.Sprintf("key repeated (first at line %d)", first))
			continue
		}
		seen[kn.Value] = kn.Line
		d.c.pos[key] = kn.Line
		elem := reflect.New(t.Elem()).Elem()
		d.walk(vn, elem, key)
		v.SetMapIndex(reflect.ValueOf(kn.Value).Convert(t.Key()), elem)
	}
}

// mapKey names a map entry in messages: env.FOO, or env["odd key"].
func mapKey(path, k string) string {
	if envNameRE.MatchString(k) {
		return path + "." + k
	}
	return fmt.Sprintf("%s[%q]", path, k)
}
