package reconcile

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/sitehost/sitehost/internal/rules"
)

// A Netlify site sets Hugo's configuration through netlify.toml's build
// environment (HUGO_ENABLEGITINFO, HUGO_PARAMS_…, NODE_ENV for PostCSS):
// on Netlify those reach `hugo` as environment variables, and Hugo reads
// HUGO_* as config. The repository is not trusted, so only what Hugo and
// the Node tools read as build settings passes; what sitehost itself
// decides (the environment, the base URL, where files go, the security
// policy, module fetching) and what Netlify's build image reads to pick
// tool versions do not.

// Limits on what netlify.toml may add to a build's environment.
const (
	maxNetlifyEnv      = 100
	maxNetlifyEnvValue = 4 << 10
)

var (
	netlifyEnvName = regexp.MustCompile(`^(HUGO_[A-Z0-9_]+|NODE_ENV)$`)
	// Settings sitehost decides for every build, whatever the site asks.
	netlifyEnvOurs = regexp.MustCompile(`^HUGO_(VERSION|ENV|ENVIRONMENT|BASEURL|SECURITY(_.*)?|CACHEDIR|RESOURCEDIR|PUBLISHDIR|DESTINATION|MODULE(_.*)?|NUMWORKERMULTIPLIER|MEMORYLIMIT|TIMEOUT)$`)
)

// netlifyBuildEnv splits env (netlify.toml's, for the deploy's contexts)
// into what the build gets and what it does not, with the reason. Names
// the site's sites.yaml build.env sets are the operator's: they win.
func netlifyBuildEnv(env, site map[string]string) (pass map[string]string, skipped []string) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		var why string
		switch {
		case k == "HUGO_VERSION":
			continue // picked the Hugo (pickHugo)
		case !netlifyEnvName.MatchString(k):
			why = "not a Hugo setting"
		case netlifyEnvOurs.MatchString(k):
			why = "sitehost decides it"
		case site[k] != "":
			why = "sites.yaml build.env sets it"
		case len(v) > maxNetlifyEnvValue:
			why = "value over 4 KiB"
		case len(pass) == maxNetlifyEnv:
			why = "over 100 variables"
		}
		if why != "" {
			skipped = append(skipped, k+" ("+why+")")
			continue
		}
		if pass == nil {
			pass = map[string]string{}
		}
		pass[k] = v
	}
	return pass, skipped
}

// passNetlifyEnv adds netlify.toml's build environment to the build's
// (a copy: the spec's map is shared), and notes for the build log what it
// added and what it left out.
func (a *attempt) passNetlifyEnv() {
	pass, skipped := netlifyBuildEnv(a.tomlEnv, a.p.settings.Env)
	if len(pass) > 0 {
		env := maps.Clone(a.p.settings.Env)
		if env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, pass)
		a.p.settings.Env = env
		a.envNote = append(a.envNote, "Environment from "+rules.NetlifyTOML+": "+strings.Join(slices.Sorted(maps.Keys(pass)), ", "))
	}
	if len(skipped) > 0 {
		a.envNote = append(a.envNote, "Not passed from "+rules.NetlifyTOML+": "+strings.Join(skipped, "; "))
	}
}
