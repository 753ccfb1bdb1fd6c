package gitsrc

import (
	"fmt"
	"strings"
)

// gitSpace is what git's sane_ctype isspace accepts.
const gitSpace = " \t\n\r"

// splitMessage splits a commit message into git's %s and %b: leading blank
// lines are skipped, the subject is the first paragraph with its lines
// right-trimmed and joined by spaces, and the body is everything after the
// blank lines that follow it, verbatim (pretty.c parse_commit_message).
func splitMessage(msg string) (subject, body string) {
	msg = skipBlankLines(msg)
	var parts []string
	for msg != "" {
		line, rest := cutLine(msg)
		msg = rest
		line = strings.TrimRight(line, gitSpace)
		if line == "" {
			break
		}
		parts = append(parts, line)
	}
	return strings.Join(parts, " "), skipBlankLines(msg)
}

// gitSubject returns git's %s of msg.
func gitSubject(msg string) string {
	s, _ := splitMessage(msg)
	return s
}

func skipBlankLines(msg string) string {
	for msg != "" {
		line, rest := cutLine(msg)
		if strings.TrimRight(line, gitSpace) != "" {
			break
		}
		msg = rest
	}
	return msg
}

// cutLine splits off the first line including its newline.
func cutLine(s string) (line, rest string) {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i+1], s[i+1:]
	}
	return s, ""
}

// quotePath quotes a file name as git does with core.quotePath=true
// (quote.c quote_c_style): names with control characters, '"', '\\',
// DEL or non-ASCII bytes are wrapped in quotes with C escapes.
func quotePath(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			break
		}
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\v':
			b.WriteString(`\v`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c < 0x20 || c >= 0x7f {
				fmt.Fprintf(&b, `\%03o`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
