package rules

import (
	"github.com/pelletier/go-toml/v2/unstable"
)

// tableLines locates a top-level array of tables in a netlify.toml, for
// error lines: key is the line of its first appearance and element[i] the
// line of its i-th table.
type tableLines struct {
	key   int
	elems []int
}

func (t tableLines) element(i int) int {
	if i < len(t.elems) {
		return t.elems[i]
	}
	return t.key
}

type tomlPos map[string]*tableLines

func (p tomlPos) of(key string) tableLines {
	if t := p[key]; t != nil {
		return *t
	}
	return tableLines{}
}

// tomlPositions finds where "redirects" and "headers" are defined: each
// [[redirects]] header, or the key of "redirects = [...]" (and each inline
// table in it). It walks go-toml's AST, not the text, so a "[[redirects]]"
// inside a multi-line string is not mistaken for a table. The document
// has already decoded without error; should the parser still panic, the
// lines found so far are kept.
func tomlPositions(data []byte) (pos tomlPos) {
	pos = tomlPos{}
	defer func() { _ = recover() }()
	var p unstable.Parser
	p.Reset(data)
	lc := lineCounter{data: data}
	atRoot := true // no [table] header seen yet
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.ArrayTable, unstable.Table:
			atRoot = false
			k := e.Key()
			if !k.Next() {
				continue
			}
			first := k.Node()
			if k.Next() || !wanted(first.Data) { // not a top-level table such as [[redirects.headers]]
				continue
			}
			t := pos.get(string(first.Data), lc.line(first.Raw.Offset))
			if e.Kind == unstable.ArrayTable {
				t.elems = append(t.elems, lc.line(first.Raw.Offset))
			}
		case unstable.KeyValue:
			if !atRoot {
				continue
			}
			k := e.Key()
			if !k.Next() {
				continue
			}
			first := k.Node()
			if !wanted(first.Data) {
				continue
			}
			t := pos.get(string(first.Data), lc.line(e.Raw.Offset))
			if k.Next() {
				continue
			}
			if v := e.Value(); v.Kind == unstable.Array {
				items := v.Children()
				for items.Next() {
					n := items.Node()
					line := t.key
					if n.Kind == unstable.InlineTable {
						line = lc.line(n.Raw.Offset)
					}
					t.elems = append(t.elems, line)
				}
			}
		}
	}
	return pos
}

func wanted(key []byte) bool {
	return string(key) == "redirects" || string(key) == "headers"
}

func (p tomlPos) get(key string, line int) *tableLines {
	t := p[key]
	if t == nil {
		t = &tableLines{key: line}
		p[key] = t
	}
	return t
}

// lineCounter turns increasing byte offsets into line numbers in linear
// time overall.
type lineCounter struct {
	data []byte
	off  int
	n    int // newlines before off
}

func (c *lineCounter) line(offset uint32) int {
	o := min(int(offset), len(c.data))
	if o < c.off { // not increasing after all: count again
		c.off, c.n = 0, 0
	}
	for i := c.off; i < o; i++ {
		if c.data[i] == '\n' {
			c.n++
		}
	}
	c.off = o
	return c.n + 1
}
