package hooks_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/hooks"
	"github.com/sitehost/sitehost/internal/site"
)

var fuzzForges = []string{"github", "gitlab", "gitea", "forgejo", "bitbucket"}

// eventHeaders are where each forge names the event.
var eventHeaders = []string{"X-GitHub-Event", "X-Gitlab-Event", "X-Gitea-Event", "X-Event-Key"}

// FuzzParse: no payload, whatever the forge and event, makes Parse panic,
// and what it accepts is a usable event. Seeded with every fixture under
// every forge's headers.
func FuzzParse(f *testing.F) {
	for _, e := range loadManifest(f) {
		body := fixture(f, e.File)
		var event, typ string
		for k, v := range e.Headers {
			switch http.CanonicalHeaderKey(k) {
			case "X-Gitea-Event-Type":
				typ = v
			case "X-Github-Event", "X-Gitlab-Event", "X-Gitea-Event", "X-Event-Key":
				event = v
			}
		}
		for i := range fuzzForges {
			f.Add(uint8(i), event, typ, false, body)
		}
	}
	f.Add(uint8(4), "repo:refs_changed", "", false, []byte(dcRefsChanged))
	f.Add(uint8(4), "repo:refs_changed", "", false, []byte(dcRefsChangedNoLinks))
	f.Add(uint8(0), "push", "", false, []byte("payload="+url.QueryEscape(string(fixture(f, "github/push.branch-updated.woodpecker.json")))))
	f.Add(uint8(4), "pr:opened", "", false, []byte(dcForkPR))
	f.Add(uint8(2), "pull_request", "pull_request_sync", true, fixture(f, "gitea/pull_request.opened.go-scm.json"))

	f.Fuzz(func(t *testing.T, which uint8, event, typ string, forgejo bool, body []byte) {
		forge := fuzzForges[int(which)%len(fuzzForges)]
		h := http.Header{}
		for _, k := range eventHeaders {
			h.Set(k, event)
		}
		h.Set("X-Gitea-Event-Type", typ)
		if strings.HasPrefix(string(body), "payload=") {
			h.Set("Content-Type", "application/x-www-form-urlencoded") // GitHub's "form" hooks
		}
		if forgejo {
			h.Set("X-Forgejo-Event", event)
			h.Set("X-Forgejo-Event-Type", typ)
		}
		evs, err := hooks.ParseAll(forge, h, body)
		if err != nil {
			if !errors.Is(err, hooks.ErrMalformed) && !errors.Is(err, hooks.ErrIgnored) {
				t.Fatalf("error is neither ErrMalformed nor ErrIgnored: %v", err)
			}
			if errors.Is(err, hooks.ErrIgnored) && len(evs) == 0 {
				t.Fatalf("ignored without an event: %v", err)
			}
			return
		}
		if len(evs) == 0 {
			t.Fatal("no error and no event")
		}
		for _, ev := range evs {
			checkUsable(t, ev)
		}
	})
}

// checkUsable holds for every event Parse accepts.
func checkUsable(t *testing.T, ev site.Event) {
	t.Helper()
	if ev.Forge == "" || ev.Kind == "" || len(ev.RepoURLs) == 0 {
		t.Fatalf("event without forge, kind or repository: %+v", ev)
	}
	if ev.Kind != site.EventPing && !strings.HasPrefix(ev.Ref, "refs/") {
		t.Fatalf("%s event with ref %q", ev.Kind, ev.Ref)
	}
	if strings.ContainsAny(ev.Ref, " \t\n\x00:~^?*[\\") || strings.Contains(ev.Ref, "..") {
		t.Fatalf("unsafe ref %q", ev.Ref)
	}
	if c := string(ev.Commit); c != "" && (len(c) != 40 && len(c) != 64 || strings.Trim(c, "0123456789abcdef") != "") {
		t.Fatalf("commit %q is not a full lowercase SHA", c)
	}
	if ev.Kind == site.EventPush && ev.Commit == "" && ev.Forge != "gitea" && ev.Forge != "forgejo" {
		t.Fatalf("push without commit: %+v", ev)
	}
	if ev.IsPR() && ev.PR <= 0 {
		t.Fatalf("pull request event without a number: %+v", ev)
	}
}
