package gitsrc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/site"
)

func TestIsRange(t *testing.T) {
	for ref, want := range map[string]bool{
		"v1.*": true, "*": true, ">=1.2.0 <2.0.0": true, ">1.0": true, "<=v2.3.4": true,
		"=1.2.3": true, "~1.2": true, "^1.2.3": true, "1.2.3 || 2.0.0": true, "1.2 - 1.3": true,
		"main": false, "v1.2.3": false, "1.2.3": false, "refs/tags/v1": false, "1.x": false,
		"feature/a-b": false, "0123456789abcdef0123456789abcdef01234567": false, "HEAD": false,
	} {
		if got := IsRange(ref); got != want {
			t.Errorf("IsRange(%q) = %v, want %v", ref, got, want)
		}
	}
}

// rangeTags mixes v-prefixed and bare tags, prereleases, build metadata
// and tags that are not semver.
var rangeTags = []string{
	"v0.1.0", "v0.2.3", "v0.2.9", "v0.3.0", "0.0.3", "0.0.4",
	"v1.0.0", "1.1.0", "v1.2.0", "v1.2.3", "v1.2.10", "v1.3.0-rc.1", "v1.3.0", "v1.4.0+build.7", "v1.10.0",
	"v2.0.0-rc.1", "v2.0.0-rc.2", "v2.3.4", "v2.3.5",
	"foo", "latest", "v3", "v3.1", "01.2.3", "v4.0.0.0", "vv4.0.0", "v4.0.0-", "v4.0.0-01", "release-5.0.0",
}

func TestMatchRange(t *testing.T) {
	tests := []struct {
		rng  string
		tags []string // nil: rangeTags
		want string
	}{
		// Wildcards.
		{rng: "*", want: "v2.3.5"},
		{rng: "v1.*", want: "v1.10.0"},
		{rng: "1.*", want: "v1.10.0"},
		{rng: "1.x", want: "v1.10.0"},
		{rng: "1.*.*", want: "v1.10.0"},
		{rng: "v1.2.*", want: "v1.2.10"},
		{rng: "1.2.X", want: "v1.2.10"},
		{rng: "2.*", want: "v2.3.5"},
		{rng: "0.*", want: "v0.3.0"},
		// Comparators, partial versions as npm reads them.
		{rng: ">=1.2.0 <2.0.0", want: "v1.10.0"},
		{rng: ">=1.2.0 <1.10.0", want: "v1.4.0+build.7"},
		{rng: ">1.0 <1.2", want: "1.1.0"},
		{rng: ">1.0", want: "v2.3.5"},
		{rng: ">2.3.4", want: "v2.3.5"},
		{rng: "<=v2.3.4", want: "v2.3.4"},
		{rng: "<=2.3", want: "v2.3.5"},
		{rng: "<2.3", want: "v1.10.0"},
		{rng: "<2", want: "v1.10.0"},
		{rng: ">=1", want: "v2.3.5"},
		{rng: "<1.2.3 >1.0.0", want: "v1.2.0"},
		{rng: ">= 1.2.0 < 1.3.0", want: "v1.2.10"},
		{rng: "=1.2.3", want: "v1.2.3"},
		{rng: "=v1.2.3", want: "v1.2.3"},
		{rng: "= 1.1.0", want: "1.1.0"},
		{rng: "=1.2", want: "v1.2.10"},
		{rng: "=1.4.0", want: "v1.4.0+build.7"},
		{rng: "=1.4.0+other", want: "v1.4.0+build.7"},
		// Tilde and caret.
		{rng: "~1.2", want: "v1.2.10"},
		{rng: "~1.2.3", want: "v1.2.10"},
		{rng: "~v1.2.3", want: "v1.2.10"},
		{rng: "~1", want: "v1.10.0"},
		{rng: "~0.2.3", want: "v0.2.9"},
		{rng: "^1.2.3", want: "v1.10.0"},
		{rng: "^1", want: "v1.10.0"},
		{rng: "^1.x", want: "v1.10.0"},
		{rng: "^0.2.3", want: "v0.2.9"},
		{rng: "^0.2", want: "v0.2.9"},
		{rng: "^0.0.3", want: "0.0.3"},
		{rng: "^0.0", want: "0.0.4"},
		{rng: "^0", want: "v0.3.0"},
		// OR and hyphen ranges.
		{rng: "1.2.3 || 2.3.4", want: "v2.3.4"},
		{rng: "^0.2 || ~1.2", want: "v1.2.10"},
		{rng: "^9 || v1.*", want: "v1.10.0"},
		{rng: "1.2 - 1.3", want: "v1.3.0"},
		{rng: "1.2.0 - 1.2.3", want: "v1.2.3"},
		// Prereleases only when the group names one on the same version.
		{rng: ">=1.3.0-rc.0 <1.3.0", want: "v1.3.0-rc.1"},
		{rng: ">=1.3.0-rc.0 <1.4.0", want: "v1.3.0"},
		{rng: "<1.3.0 >=1.2.10-rc.1", want: "v1.2.10"},
		{rng: "~2.0.0-rc.1", want: "v2.0.0-rc.2"},
		{rng: "=2.0.0-rc.1", want: "v2.0.0-rc.1"},
		{rng: ">=2.0.0-rc.1 <2.0.0 || 1.*", want: "v2.0.0-rc.2"},
		{rng: "<2.0.0 || ~2.0.0-rc.1", want: "v2.0.0-rc.2"},
		{rng: "^1.3.0", want: "v1.10.0"},
		{rng: "~1.3", tags: []string{"v1.3.0-rc.1", "v1.3.1-beta"}, want: ""},
		{rng: "*", tags: []string{"v1.0.0-rc.1", "v0.9.0"}, want: "v0.9.0"},
		// Tag forms and ties.
		{rng: "^1", tags: []string{"1.5.0", "v1.5.0", "v1.4.0"}, want: "v1.5.0"},
		{rng: "^1", tags: []string{"v1.5.0+b1", "v1.5.0+b2"}, want: "v1.5.0+b2"},
		{rng: "~1.0", tags: []string{"refs/tags/v1.0.1", "refs/tags/v1.1.0"}, want: "refs/tags/v1.0.1"},
		{rng: "^1", tags: []string{"v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-beta.2", "v1.0.0-beta.11"}, want: ""},
		{rng: ">=1.0.0-alpha <1.0.0", tags: []string{"v1.0.0-alpha", "v1.0.0-beta.2", "v1.0.0-beta.11", "v1.0.0-alpha.1"}, want: "v1.0.0-beta.11"},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			tags := tt.tags
			if tags == nil {
				tags = rangeTags
			}
			got, err := MatchRange(tt.rng, tags)
			if tt.want == "" {
				if !errors.Is(err, ErrRefNotFound) {
					t.Errorf("MatchRange(%q) = %q, %v; want ErrRefNotFound", tt.rng, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("MatchRange(%q) = %q, %v; want %q", tt.rng, got, err, tt.want)
			}
		})
	}
}

func TestMatchRangeNoMatch(t *testing.T) {
	_, err := MatchRange("^3", rangeTags) // "v3" and "v3.1" are not full versions
	if !errors.Is(err, ErrRefNotFound) || errors.Is(err, ErrInvalidRange) {
		t.Fatalf("err = %v, want ErrRefNotFound", err)
	}
	want := `no tag matches range "^3" (newest tags: v2.3.5, v2.3.4, v2.0.0-rc.2, v2.0.0-rc.1, v1.10.0)`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to contain %q", err, want)
	}

	_, err = MatchRange("*", []string{"foo", "latest"})
	if !errors.Is(err, ErrRefNotFound) || !strings.Contains(err.Error(), `range "*": no semver tags among 2 tags`) {
		t.Errorf("no semver tags: err = %v", err)
	}
	if _, err := MatchRange("*", nil); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("no tags: err = %v", err)
	}
}

func TestMatchRangeInvalid(t *testing.T) {
	for _, rng := range []string{
		">=foo", "a b", "||", "1.* ||", "|| 1.*", ">=", "1.2 >=", "~1.2-rc.1", "1.*.3 >0", "^01.2",
		">=1.2.3-", ">=1.2.3-01", "1 - ", "- 1", "1.2.3.4 *", ">=1.2.0<2.0.0", "=>1", "~>1.2",
		">=18446744073709551615.0.0 *", "1.2.3+ *", "v1.2.3 - v1.-1",
	} {
		got, err := MatchRange(rng, rangeTags)
		if !errors.Is(err, ErrInvalidRange) || errors.Is(err, ErrRefNotFound) || !strings.Contains(err.Error(), rng) {
			t.Errorf("MatchRange(%q) = %q, %v; want ErrInvalidRange naming the range", rng, got, err)
		}
	}
}

func TestResolveRange(t *testing.T) {
	f := newFixture(t)
	commits := map[string]site.Commit{}
	for _, tag := range []string{"v1.0.0", "v1.2.0", "v1.10.0", "v2.0.0", "foo"} {
		f.write("index.md", tag)
		commits[tag] = f.commit(tag)
		if tag == "v1.10.0" {
			f.git("tag", "-a", "-m", "release "+tag, tag)
		} else {
			f.git("tag", tag)
		}
	}
	f.write("index.md", "tip")
	f.commit("tip")
	r := f.open(Options{URL: f.url()})
	ctx := context.Background()

	for rng, want := range map[string]string{
		"v1.*":             "v1.10.0", // annotated: peeled to the commit
		">=1.2.0 <1.10.0":  "v1.2.0",
		"~1.0":             "v1.0.0",
		"*":                "v2.0.0",
		"^1.2 || >=3.0.0":  "v1.10.0",
		"<=1.2.0 || =1.10": "v1.10.0",
	} {
		got, err := r.Resolve(ctx, rng)
		if err != nil || got != commits[want] {
			t.Errorf("Resolve(%q) = %s, %v; want %s (%s)", rng, got, err, commits[want], want)
		}
	}

	if got := mustFetch(t, r, "v1.*"); got != commits["v1.10.0"] {
		t.Errorf("Fetch(v1.*) = %s, want %s", got, commits["v1.10.0"])
	}
	if info, err := r.CommitInfo(commits["v1.10.0"]); err != nil || info.Subject != "v1.10.0" {
		t.Errorf("CommitInfo after range fetch = %+v, %v", info, err)
	}
	if _, err := r.CommitInfo(commits["v1.0.0"]); err != nil {
		t.Errorf("range fetch has no full history: %v", err)
	}

	// A new release moves the range on the next Resolve and Fetch.
	f.write("index.md", "v1.11.0")
	c111 := f.commit("v1.11.0")
	f.git("tag", "-a", "-m", "release", "v1.11.0")
	if got, err := r.Resolve(ctx, "v1.*"); err != nil || got != c111 {
		t.Errorf("Resolve(v1.*) after v1.11.0 = %s, %v; want %s", got, err, c111)
	}
	if got := mustFetch(t, r, "v1.*"); got != c111 {
		t.Errorf("Fetch(v1.*) after v1.11.0 = %s, want %s", got, c111)
	}

	// Plain names keep their meaning.
	if got, err := r.Resolve(ctx, "foo"); err != nil || got != commits["foo"] {
		t.Errorf("Resolve(foo) = %s, %v", got, err)
	}
	if got, err := r.Resolve(ctx, "v1.2.0"); err != nil || got != commits["v1.2.0"] {
		t.Errorf("Resolve(v1.2.0) = %s, %v", got, err)
	}

	_, err := r.Resolve(ctx, "v3.*")
	if !errors.Is(err, ErrRefNotFound) || !strings.Contains(err.Error(), `"v3.*"`) ||
		!strings.Contains(err.Error(), "newest tags: v2.0.0, v1.11.0, v1.10.0, v1.2.0, v1.0.0") ||
		!strings.HasPrefix(err.Error(), "resolving v3.* from file://") {
		t.Errorf("Resolve(v3.*) = %v; want ErrRefNotFound naming the range and tags", err)
	}
	if _, err := r.Fetch(ctx, "v3.*"); !errors.Is(err, ErrRefNotFound) || !strings.HasPrefix(err.Error(), "fetching v3.* from ") {
		t.Errorf("Fetch(v3.*) = %v; want ErrRefNotFound", err)
	}
	if _, err := r.Resolve(ctx, ">=foo"); !errors.Is(err, ErrInvalidRange) || errors.Is(err, ErrRefNotFound) {
		t.Errorf("Resolve(>=foo) = %v; want ErrInvalidRange", err)
	}
}
