package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/sitehost/sitehost/internal/site"
)

// Parse errors. Handlers answer ErrMalformed with 400 and ErrIgnored with
// 200 and do nothing else; ErrUnknownForge means the path named no forge.
var (
	ErrMalformed    = errors.New("malformed payload")
	ErrIgnored      = errors.New("ignored")
	ErrUnknownForge = errors.New("unknown forge")
)

// forgeNames are the forges ServeHTTP, Parse and Verify accept. "forgejo"
// is an alias of "gitea": both send the same payloads.
const forgeNames = "github, gitlab, gitea, forgejo, bitbucket"

func knownForge(name string) bool {
	switch name {
	case "github", "gitlab", "gitea", "forgejo", "bitbucket":
		return true
	}
	return false
}

// Parse normalises one webhook delivery of forge (github, gitlab, gitea,
// forgejo, bitbucket) into a site.Event. It does not authenticate the
// request: call Verify on the same bytes before acting on the event.
//
// A Bitbucket push can carry several ref changes; Parse returns the first
// and ParseAll returns all of them.
//
// On ErrIgnored the event still carries Forge, Delivery and RepoURLs when
// the payload names its repository, so a caller can authenticate the
// request before answering it.
func Parse(forge string, h http.Header, body []byte) (site.Event, error) {
	evs, err := ParseAll(forge, h, body)
	if len(evs) == 0 {
		return site.Event{}, err
	}
	return evs[0], err
}

// ParseAll is Parse for deliveries that may carry several ref changes
// (Bitbucket repo:push and repo:refs_changed). Every event it returns
// shares Forge, Delivery and RepoURLs. Unless the error is ErrMalformed or
// ErrUnknownForge, it returns at least one event.
func ParseAll(forge string, h http.Header, body []byte) ([]site.Event, error) {
	var (
		evs []site.Event
		err error
	)
	switch forge {
	case "github":
		evs, err = one(parseGitHub(h, body))
	case "gitlab":
		evs, err = one(parseGitLab(h, body))
	case "gitea", "forgejo":
		evs, err = one(parseGitea(h, body))
	case "bitbucket":
		evs, err = parseBitbucket(h, body)
	default:
		return nil, fmt.Errorf("%w %q: use one of %s", ErrUnknownForge, forge, forgeNames)
	}
	if len(evs) == 0 && (err == nil || errors.Is(err, ErrIgnored)) {
		// Keep the promise of at least one event.
		evs = []site.Event{{Forge: forge}}
		if err == nil {
			err = ignoref("%s delivery changes no branch or tag", forge)
		}
	}
	return evs, err
}

func one(ev site.Event, err error) ([]site.Event, error) {
	return []site.Event{ev}, err
}

// malformedf and ignoref wrap the sentinels with a reason.
func malformedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func ignoref(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrIgnored}, args...)...)
}

// decode unmarshals a payload; forges add fields, so unknown ones are fine.
func decode(forge string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return malformedf("%s payload is not the expected JSON: %w", forge, err)
	}
	return nil
}

// firstHeader returns the first non-empty value among the named headers.
func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(h.Get(n)); v != "" {
			return v
		}
	}
	return ""
}

// urls returns the non-empty, distinct strings of ss in order.
func urls(ss ...string) []string {
	var out []string
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// zeroSHA reports whether s is git's all-zero object name, which forges
// send as the new value of a deleted ref.
func zeroSHA(s string) bool {
	return s != "" && strings.Trim(s, "0") == ""
}

// fullCommit returns s as a commit if it is a full SHA-1 or SHA-256 object
// name in hex (either case).
func fullCommit(s string) (site.Commit, bool) {
	if len(s) != 40 && len(s) != 64 {
		return "", false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", false
		}
	}
	return site.Commit(strings.ToLower(s)), true
}

// needCommit is fullCommit for a field the event cannot do without.
func needCommit(forge, field, s string) (site.Commit, error) {
	c, ok := fullCommit(s)
	if !ok {
		if s == "" {
			return "", malformedf("%s payload has no %s", forge, field)
		}
		return "", malformedf("%s payload: %s %q is not a commit SHA", forge, field, s)
	}
	return c, nil
}

// qualify turns a branch or tag name into a full ref under prefix
// (refs/heads/ or refs/tags/); a name that is already a full ref is kept.
func qualify(prefix, name string) string {
	if strings.HasPrefix(name, "refs/") {
		return name
	}
	return prefix + name
}

// needRef checks that ref is a full ref git would accept, so that nothing
// downstream gets an option, a pattern or a path trick in its place.
func needRef(forge, ref string) (string, error) {
	if !validRef(ref) {
		if ref == "" || ref == "refs/heads/" || ref == "refs/tags/" {
			return "", malformedf("%s payload names no ref", forge)
		}
		return "", malformedf("%s payload: %q is not a valid git ref", forge, ref)
	}
	return ref, nil
}

// validRef applies the rules of git check-ref-format to a full ref.
func validRef(ref string) bool {
	if len(ref) > 1024 || !strings.HasPrefix(ref, "refs/") || strings.HasSuffix(ref, "/") ||
		strings.HasSuffix(ref, ".") || strings.Contains(ref, "..") || strings.Contains(ref, "@{") ||
		strings.Contains(ref, "//") {
		return false
	}
	for _, c := range ref {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	for _, part := range strings.Split(ref, "/")[1:] {
		if part == "" || strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return false
		}
	}
	return true
}

// pushEvent sets ev to a ref that moved to after, or that was deleted
// (deleted, or after is all zeros).
func pushEvent(ev site.Event, ref, after string, deleted bool) (site.Event, error) {
	ref, err := needRef(ev.Forge, ref)
	if err != nil {
		return ev, err
	}
	ev.Ref = ref
	if deleted || zeroSHA(after) {
		ev.Kind = site.EventBranchDeleted
		return ev, nil
	}
	ev.Kind = site.EventPush
	ev.Commit, err = needCommit(ev.Forge, "new commit", after)
	return ev, err
}
