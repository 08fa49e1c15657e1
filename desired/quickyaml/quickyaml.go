// Package quickyaml reads the plain block-style YAML fleet files are
// written in into yaml.v3's node tree, the tree yaml.v3's decoder builds
// from the same text (comments aside), several times faster and in a few
// large allocations: at 100,000 instances yaml.v3's parse was most of an
// apply's time.
//
// It reads block mappings and sequences, one-line flow collections,
// one-line plain and quoted scalars and comments, in ASCII. Anything else —
// anchors, tags, multi-line and block scalars, empty values, tabs,
// several documents, and every error — it declines, and its caller hands
// the text to yaml.v3, which reads all of YAML and words the errors. It
// never decides that a text is invalid; a fuzz test holds it to yaml.v3's
// tree for every text it accepts.
package quickyaml

import (
	"slices"

	"go.yaml.in/yaml/v3"
)

// Doc is a document as Parse read it.
type Doc struct {
	// Root is the document node, as yaml.v3's Decoder.Decode fills one,
	// without comments.
	Root *yaml.Node
	// CommentLines are the lines (1-based, ascending) holding a comment,
	// for a caller that needs to know whether part of the tree would have
	// carried one.
	CommentLines []int
}

// Parse reads data, or reports false when data is beyond what this
// package reads.
func Parse(data []byte) (Doc, bool) {
	p := parser{data: data}
	if !p.split() {
		return Doc{}, false
	}
	root, ok := p.document()
	if !ok {
		return Doc{}, false
	}
	slices.Sort(p.comments)
	return Doc{Root: root, CommentLines: slices.Compact(p.comments)}, true
}

// line is one line of the text: data[start:end] without its newline,
// indent leading spaces, blank when it holds nothing but spaces or a
// comment.
type line struct {
	start, end, indent int
	blank              bool
}

type parser struct {
	data     []byte
	lines    []line
	at       int // the line being read
	comments []int

	nodes    []yaml.Node  // the current chunk nodes are handed out of
	children []*yaml.Node // the current chunk Content slices are cut from
	stack    []*yaml.Node // children of the collections being read
	depth    int          // block collections being read
	asked    map[string]string
}

const chunk = 4096

// maxBlockDepth bounds how deep block collections nest here: fleet files
// nest a handful deep, and yaml.v3 refuses past 10,000 with an error of
// its own, which it is left to word.
const maxBlockDepth = 64

// maxKey bounds a key's length: yaml.v3 reads no key of over 1,024
// characters on one line.
const maxKey = 1000

// split cuts the text into lines, refusing bytes outside printable ASCII
// (tabs and carriage returns included) anywhere, comments included:
// yaml.v3 reads some of those as line breaks, and columns would count
// runes.
func (p *parser) split() bool {
	n := 0
	for _, b := range p.data {
		if b == '\n' {
			n++
		} else if b < 0x20 || b >= 0x7f {
			return false
		}
	}
	p.lines = make([]line, 0, n+1)
	start := 0
	for start <= len(p.data) {
		end := start
		for end < len(p.data) && p.data[end] != '\n' {
			end++
		}
		l := line{start: start, end: end}
		for l.start+l.indent < end && p.data[l.start+l.indent] == ' ' {
			l.indent++
		}
		if c := l.start + l.indent; c == end {
			l.blank = true
		} else if p.data[c] == '#' {
			l.blank = true
			p.comments = append(p.comments, len(p.lines)+1)
		}
		p.lines = append(p.lines, l)
		if end == len(p.data) {
			break
		}
		start = end + 1
	}
	return true
}

// next moves to the next line with content and returns it, or -1 at the
// end of the text.
func (p *parser) next() int {
	for p.at < len(p.lines) && p.lines[p.at].blank {
		p.at++
	}
	if p.at == len(p.lines) {
		return -1
	}
	return p.at
}

func (p *parser) node(kind yaml.Kind, tag string, li, col int) *yaml.Node {
	if len(p.nodes) == cap(p.nodes) {
		p.nodes = make([]yaml.Node, 0, chunk)
	}
	p.nodes = p.nodes[:len(p.nodes)+1]
	n := &p.nodes[len(p.nodes)-1]
	n.Kind, n.Tag, n.Line, n.Column = kind, tag, li+1, col+1
	return n
}

// content moves the children stacked from mark on into a slice of their
// own (full, so that an append by a user of the tree copies it).
func (p *parser) content(mark int) []*yaml.Node {
	kids := p.stack[mark:]
	if len(kids) > cap(p.children)-len(p.children) {
		p.children = make([]*yaml.Node, 0, max(chunk, len(kids)))
	}
	s := len(p.children)
	p.children = append(p.children, kids...)
	p.stack = p.stack[:mark]
	return p.children[s:len(p.children):len(p.children)]
}

func (p *parser) document() (*yaml.Node, bool) {
	li := p.next()
	if li < 0 || p.lines[li].indent != 0 {
		return nil, false
	}
	l := p.lines[li]
	// Directives and document markers.
	if c := p.data[l.start]; c == '%' || (c == '-' || c == '.') && l.end-l.start >= 3 && string(p.data[l.start:l.start+3]) == string([]byte{c, c, c}) {
		return nil, false
	}
	doc := p.node(yaml.DocumentNode, "", li, 0)
	root, ok := p.mapping(li, 0, l.start)
	if !ok || p.next() >= 0 {
		return nil, false
	}
	doc.Content = []*yaml.Node{root}
	return doc, true
}

// mapping reads a block mapping whose keys stand at column col, the first
// at from on line li (inside a sequence item's line, from is past its
// dash; otherwise the line's indent is col).
func (p *parser) mapping(li, col, from int) (*yaml.Node, bool) {
	if !p.enter() {
		return nil, false
	}
	defer p.leave()
	m := p.node(yaml.MappingNode, "!!map", li, col)
	mark := len(p.stack)
	first := true
	for {
		if !first {
			li = p.next()
			if li < 0 || p.lines[li].indent < col {
				break
			}
			if p.lines[li].indent > col {
				return nil, false
			}
			from = p.lines[li].start + col
		}
		first = false
		l := p.lines[li]
		key, after, ok := p.key(li, from, l.end)
		if !ok {
			return nil, false
		}
		pos := p.spaces(after, l.end)
		var value *yaml.Node
		if pos == l.end || p.data[pos] == '#' {
			if pos < l.end {
				p.comment(li)
			}
			// The value is the block below: more indented, or a
			// sequence at the key's own column.
			p.at = li + 1
			nl := p.next()
			switch {
			case nl >= 0 && p.lines[nl].indent > col:
				value, ok = p.block(nl)
			case nl >= 0 && p.lines[nl].indent == col && p.item(nl):
				value, ok = p.sequence(nl, col)
			default:
				ok = false // an empty value: its position is yaml.v3's to give
			}
		} else {
			value, ok = p.inline(li, pos, l.end)
			p.at = li + 1
			if ok {
				// A more indented line below would continue the scalar.
				if nl := p.next(); nl >= 0 && p.lines[nl].indent > col {
					ok = false
				}
			}
		}
		if !ok {
			return nil, false
		}
		p.stack = append(p.stack, key, value)
	}
	m.Content = p.content(mark)
	return m, true
}

// enter counts a block collection in, declining past maxBlockDepth.
func (p *parser) enter() bool {
	p.depth++
	return p.depth <= maxBlockDepth
}

func (p *parser) leave() { p.depth-- }

// block reads the block collection that starts line li.
func (p *parser) block(li int) (*yaml.Node, bool) {
	l := p.lines[li]
	if p.item(li) {
		return p.sequence(li, l.indent)
	}
	return p.mapping(li, l.indent, l.start+l.indent)
}

// item says whether line li is a sequence entry.
func (p *parser) item(li int) bool {
	l := p.lines[li]
	c := l.start + l.indent
	return p.data[c] == '-' && (c+1 == l.end || p.data[c+1] == ' ')
}

// sequence reads a block sequence whose dashes stand at column col.
func (p *parser) sequence(li, col int) (*yaml.Node, bool) {
	if !p.enter() {
		return nil, false
	}
	defer p.leave()
	s := p.node(yaml.SequenceNode, "!!seq", li, col)
	mark := len(p.stack)
	for {
		li = p.next()
		if li < 0 || p.lines[li].indent < col {
			break
		}
		if p.lines[li].indent > col {
			return nil, false
		}
		if !p.item(li) {
			break // a key of the mapping this sequence is the value of
		}
		l := p.lines[li]
		pos := p.spaces(l.start+col+1, l.end)
		if pos == l.end || p.data[pos] == '#' || p.data[pos] == '-' {
			return nil, false // an empty entry, or a sequence in a sequence
		}
		var item *yaml.Node
		var ok bool
		if _, _, isKey := p.key(li, pos, l.end); isKey {
			item, ok = p.mapping(li, pos-l.start, pos)
		} else {
			item, ok = p.inline(li, pos, l.end)
			p.at = li + 1
			if nl := p.next(); ok && nl >= 0 && p.lines[nl].indent > col {
				ok = false
			}
		}
		if !ok {
			return nil, false
		}
		p.stack = append(p.stack, item)
	}
	s.Content = p.content(mark)
	return s, true
}

// key reads a block mapping's plain key at from and its colon, returning
// the key and where its value starts.
func (p *parser) key(li, from, end int) (*yaml.Node, int, bool) {
	if from >= end || indicator(p.data[from]) {
		return nil, 0, false
	}
	for i := from; i < end; i++ {
		switch c := p.data[i]; {
		case c == ':' && (i+1 == end || p.data[i+1] == ' '):
			if p.data[i-1] == ' ' || i-from > maxKey {
				return nil, 0, false
			}
			k, ok := p.plain(li, from, i)
			return k, i + 1, ok
		case c == '#' && p.data[i-1] == ' ':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// inline reads a value that ends its line (but for a comment): a scalar
// or a flow mapping.
func (p *parser) inline(li, pos, end int) (*yaml.Node, bool) {
	var n *yaml.Node
	var ok bool
	switch p.data[pos] {
	case '{', '[':
		n, pos, ok = p.flow(li, pos, end, 0)
	case '\'', '"':
		n, pos, ok = p.quoted(li, pos, end)
	default:
		if indicator(p.data[pos]) {
			return nil, false
		}
		stop := end
		for i := pos; i < end; i++ {
			c := p.data[i]
			if c == '#' && p.data[i-1] == ' ' {
				stop = i
				break
			}
			if c == ':' && (i+1 == end || p.data[i+1] == ' ') {
				return nil, false // a mapping where a value should be
			}
		}
		e := stop
		for p.data[e-1] == ' ' {
			e--
		}
		n, ok = p.plain(li, pos, e)
		pos = stop
	}
	if !ok {
		return nil, false
	}
	pos = p.spaces(pos, end)
	if pos < end {
		if p.data[pos] != '#' || p.data[pos-1] != ' ' {
			return nil, false
		}
		p.comment(li)
	}
	return n, true
}

// maxFlowDepth bounds how deep flow collections nest here (yaml.v3 has
// its own limit; this one is far below it).
const maxFlowDepth = 16

// flow reads a one-line flow collection or scalar at pos, depth flow
// collections deep, returning it and where it ends.
func (p *parser) flow(li, pos, end, depth int) (*yaml.Node, int, bool) {
	switch c := p.data[pos]; {
	case c == '{' || c == '[':
		if depth == maxFlowDepth {
			return nil, 0, false
		}
		return p.collection(li, pos, end, depth+1)
	case c == '\'' || c == '"':
		return p.quoted(li, pos, end)
	case indicator(c):
		return nil, 0, false
	}
	from := pos
	for pos < end && p.data[pos] != ':' && !flowStop(p.data[pos]) {
		pos++
	}
	e := pos
	for e > from && p.data[e-1] == ' ' {
		e--
	}
	if pos < end && p.data[pos] == ':' {
		return nil, 0, false // a pair, or a colon in a scalar: yaml.v3's to read
	}
	n, ok := p.plain(li, from, e)
	return n, pos, ok
}

// collection reads a one-line flow mapping (of plain keys) or sequence at
// pos, returning it and where it ends.
func (p *parser) collection(li, pos, end, depth int) (*yaml.Node, int, bool) {
	open := p.data[pos]
	n := p.node(yaml.SequenceNode, "!!seq", li, pos-p.lines[li].start)
	closer := byte(']')
	if open == '{' {
		n.Kind, n.Tag, closer = yaml.MappingNode, "!!map", '}'
	}
	n.Style = yaml.FlowStyle
	mark := len(p.stack)
	pos = p.spaces(pos+1, end)
	if pos < end && p.data[pos] == closer {
		return n, pos + 1, true // empty: no Content, as yaml.v3 has it
	}
	for {
		pos = p.spaces(pos, end)
		if pos == end {
			return nil, 0, false
		}
		if open == '{' {
			// A key: plain, up to ': '.
			from := pos
			for pos < end && p.data[pos] != ':' && !flowStop(p.data[pos]) {
				pos++
			}
			if pos == from || pos-from > maxKey || pos+1 >= end || p.data[pos] != ':' || p.data[pos+1] != ' ' || p.data[pos-1] == ' ' || indicator(p.data[from]) {
				return nil, 0, false
			}
			k, ok := p.plain(li, from, pos)
			if !ok {
				return nil, 0, false
			}
			p.stack = append(p.stack, k)
			if pos = p.spaces(pos+1, end); pos == end {
				return nil, 0, false
			}
		}
		v, next, ok := p.flow(li, pos, end, depth)
		if !ok {
			return nil, 0, false
		}
		p.stack = append(p.stack, v)
		pos = p.spaces(next, end)
		if pos == end {
			return nil, 0, false
		}
		switch p.data[pos] {
		case closer:
			n.Content = p.content(mark)
			return n, pos + 1, true
		case ',':
			pos++
			if q := p.spaces(pos, end); q < end && p.data[q] == closer {
				return nil, 0, false // a trailing comma
			}
		default:
			return nil, 0, false
		}
	}
}

// flowStop says whether c ends a plain scalar in a flow mapping, or is one
// this package leaves to yaml.v3 there.
func flowStop(c byte) bool {
	switch c {
	case ',', '{', '}', '[', ']', '#', '\'', '"', '?':
		return true
	}
	return false
}

// quoted reads a one-line quoted scalar at pos; a double-quoted one with
// escapes is left to yaml.v3.
func (p *parser) quoted(li, pos, end int) (*yaml.Node, int, bool) {
	q := p.data[pos]
	n := p.node(yaml.ScalarNode, "!!str", li, pos-p.lines[li].start)
	var buf []byte
	i := pos + 1
	for ; ; i++ {
		if i == end {
			return nil, 0, false
		}
		c := p.data[i]
		if q == '"' && c == '\\' {
			return nil, 0, false
		}
		if c != q {
			if buf != nil {
				buf = append(buf, c)
			}
			continue
		}
		if q == '\'' && i+1 < end && p.data[i+1] == '\'' {
			if buf == nil {
				buf = append([]byte(nil), p.data[pos+1:i]...)
			}
			buf = append(buf, '\'')
			i++
			continue
		}
		break
	}
	if buf != nil {
		n.Value = string(buf)
	} else {
		n.Value = string(p.data[pos+1 : i])
	}
	if q == '\'' {
		n.Style = yaml.SingleQuotedStyle
	} else {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n, i + 1, true
}

// plain makes the plain scalar data[from:to] of line li, with the tag
// yaml.v3 resolves it to.
func (p *parser) plain(li, from, to int) (*yaml.Node, bool) {
	v := string(p.data[from:to])
	tag, ok := p.resolve(v)
	if !ok {
		return nil, false
	}
	n := p.node(yaml.ScalarNode, tag, li, from-p.lines[li].start)
	n.Value = v
	return n, true
}

// resolve is the tag yaml.v3 gives the plain scalar v: decided here for
// words and decimal integers, asked of yaml.v3 (once per value) for the
// rest of what could be a number or a time.
func (p *parser) resolve(v string) (string, bool) {
	switch c := v[0]; {
	case c == '+' || c == '-' || c == '.' || c >= '0' && c <= '9':
		if decimal(v) {
			return "!!int", true
		}
		return p.ask(v)
	case c == '~' || c == '<' || c == 'y' || c == 'Y' || c == 'n' || c == 'N' || c == 't' || c == 'T' || c == 'f' || c == 'F' || c == 'o' || c == 'O':
		switch v {
		case "true", "True", "TRUE", "false", "False", "FALSE":
			return "!!bool", true
		case "~", "null", "Null", "NULL":
			return "!!null", true
		case "<<":
			return "!!merge", true
		}
	}
	return "!!str", true
}

// decimal says whether v is an integer written plainly: no sign, no
// leading zero, at most 18 digits.
func decimal(v string) bool {
	if len(v) > 18 || v[0] == '0' && len(v) > 1 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

func (p *parser) ask(v string) (string, bool) {
	if tag, ok := p.asked[v]; ok {
		return tag, tag != ""
	}
	if p.asked == nil {
		p.asked = map[string]string{}
	}
	var n yaml.Node
	tag := ""
	if err := yaml.Unmarshal([]byte(v), &n); err == nil && len(n.Content) == 1 {
		if c := n.Content[0]; c.Kind == yaml.ScalarNode && c.Style == 0 && c.Value == v {
			tag = c.Tag
		}
	}
	p.asked[v] = tag
	return tag, tag != ""
}

// indicator says whether a plain scalar may not start with c (here: this
// package leaves those to yaml.v3, though YAML allows some, as in -1).
func indicator(c byte) bool {
	switch c {
	case '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', ' ':
		return true
	}
	return false
}

func (p *parser) spaces(pos, end int) int {
	for pos < end && p.data[pos] == ' ' {
		pos++
	}
	return pos
}

// comment notes a comment at the end of line li.
func (p *parser) comment(li int) { p.comments = append(p.comments, li+1) }
