package gitsrc

import (
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// mailmap maps author identities as git's mailmap.c does, keyed by
// ASCII-lowercased old email (git compares with strcasecmp).
type mailmap map[string]*mailmapEntry

type mailmapEntry struct {
	name, email *string                 // the "simple" mapping by email only
	byName      map[string]*mailmapInfo // old name (lowercased) -> mapping
}

type mailmapInfo struct{ name, email *string }

// loadMailmap reads .mailmap from the root tree, as git log does from the
// top of a checkout. Symlinked .mailmap files are ignored, as in git.
func loadMailmap(st *filesystem.Storage, root plumbing.Hash) (mailmap, error) {
	t, err := object.GetTree(st, root)
	if err != nil {
		return nil, fmt.Errorf("reading tree %s: %w", root, err)
	}
	var h plumbing.Hash
	for _, e := range t.Entries {
		if e.Name == ".mailmap" && (e.Mode == filemode.Regular || e.Mode == filemode.Executable || e.Mode == filemode.Deprecated) {
			h = e.Hash
		}
	}
	if h.IsZero() {
		return nil, nil
	}
	blob, err := object.GetBlob(st, h)
	if err != nil {
		return nil, fmt.Errorf("reading .mailmap: %w", err)
	}
	rd, err := blob.Reader()
	if err != nil {
		return nil, fmt.Errorf("reading .mailmap: %w", err)
	}
	defer rd.Close()
	data, err := io.ReadAll(io.LimitReader(rd, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading .mailmap: %w", err)
	}
	return parseMailmap(string(data)), nil
}

func parseMailmap(s string) mailmap {
	m := mailmap{}
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name1, email1, rest, ok := parseNameEmail(line, false)
		if !ok {
			continue
		}
		var name2, email2 *string
		if rest != "" {
			if n, e, _, ok := parseNameEmail(rest, true); ok {
				name2, email2 = n, &e
			}
		}
		m.add(name1, &email1, name2, email2)
	}
	return m
}

// parseNameEmail mirrors mailmap.c parse_name_and_email: "Name <email>",
// name trimmed and nil if empty; rest is what follows '>'.
func parseNameEmail(s string, allowEmptyEmail bool) (name *string, email, rest string, ok bool) {
	left := strings.IndexByte(s, '<')
	if left < 0 {
		return nil, "", "", false
	}
	right := strings.IndexByte(s[left+1:], '>')
	if right < 0 {
		return nil, "", "", false
	}
	right += left + 1
	if !allowEmptyEmail && right == left+1 {
		return nil, "", "", false
	}
	if n := strings.Trim(s[:left], gitSpace); n != "" {
		name = &n
	}
	return name, s[left+1 : right], s[right+1:], true
}

func (m mailmap) add(newName, newEmail, oldName, oldEmail *string) {
	if oldEmail == nil {
		oldEmail, newEmail = newEmail, nil
	}
	key := asciiLower(*oldEmail)
	e := m[key]
	if e == nil {
		e = &mailmapEntry{byName: map[string]*mailmapInfo{}}
		m[key] = e
	}
	if oldName == nil {
		if newName != nil {
			e.name = newName
		}
		if newEmail != nil {
			e.email = newEmail
		}
		return
	}
	e.byName[asciiLower(*oldName)] = &mailmapInfo{name: newName, email: newEmail}
}

// lookup returns the mapped name and email (mailmap.c map_user).
func (m mailmap) lookup(name, email string) (string, string) {
	e := m[asciiLower(email)]
	if e == nil {
		return name, email
	}
	info := mailmapInfo{name: e.name, email: e.email}
	if sub := e.byName[asciiLower(name)]; sub != nil {
		info = *sub
	}
	if info.name != nil {
		name = *info.name
	}
	if info.email != nil {
		email = *info.email
	}
	return name, email
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
