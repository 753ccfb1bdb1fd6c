package reconcile

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestNetlifyBuildEnv(t *testing.T) {
	long := strings.Repeat("x", maxNetlifyEnvValue+1)
	for _, tt := range []struct {
		name    string
		env     map[string]string
		site    map[string]string
		pass    []string
		skipped []string
	}{
		{
			name: "hugo settings pass",
			env:  map[string]string{"HUGO_ENABLEGITINFO": "true", "HUGO_PARAMS_GREETING": "hi", "NODE_ENV": "production", "HUGO_VERSION": "0.123.4"},
			pass: []string{"HUGO_ENABLEGITINFO", "HUGO_PARAMS_GREETING", "NODE_ENV"},
		},
		{
			name:    "what sitehost decides does not",
			env:     map[string]string{"HUGO_ENV": "staging", "HUGO_BASEURL": "https://x/", "HUGO_SECURITY_EXEC_ALLOW": "['.*']", "HUGO_SECURITY": "{}", "HUGO_CACHEDIR": "/", "HUGO_PUBLISHDIR": "/etc", "HUGO_MODULE_PROXY": "http://evil/"},
			skipped: []string{"HUGO_BASEURL (sitehost decides it)", "HUGO_CACHEDIR (sitehost decides it)", "HUGO_ENV (sitehost decides it)", "HUGO_MODULE_PROXY (sitehost decides it)", "HUGO_PUBLISHDIR (sitehost decides it)", "HUGO_SECURITY (sitehost decides it)", "HUGO_SECURITY_EXEC_ALLOW (sitehost decides it)"},
		},
		{
			name:    "nor what is not a build setting",
			env:     map[string]string{"NODE_VERSION": "18", "LD_PRELOAD": "/tmp/x.so", "NODE_OPTIONS": "--require ./x.js", "PATH": "/tmp", "hugo_lower": "1"},
			skipped: []string{"LD_PRELOAD (not a Hugo setting)", "NODE_OPTIONS (not a Hugo setting)", "NODE_VERSION (not a Hugo setting)", "PATH (not a Hugo setting)", "hugo_lower (not a Hugo setting)"},
		},
		{
			name:    "sites.yaml wins, long values are refused",
			env:     map[string]string{"HUGO_PARAMS_A": "toml", "HUGO_PARAMS_B": long},
			site:    map[string]string{"HUGO_PARAMS_A": "yaml"},
			skipped: []string{"HUGO_PARAMS_A (sites.yaml build.env sets it)", "HUGO_PARAMS_B (value over 4 KiB)"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pass, skipped := netlifyBuildEnv(tt.env, tt.site)
			if got := slices.Sorted(maps.Keys(pass)); !slices.Equal(got, tt.pass) {
				t.Errorf("passed %v, want %v", got, tt.pass)
			}
			for k, v := range pass {
				if v != tt.env[k] {
					t.Errorf("%s = %q, want %q", k, v, tt.env[k])
				}
			}
			if !slices.Equal(skipped, tt.skipped) {
				t.Errorf("skipped %q, want %q", skipped, tt.skipped)
			}
		})
	}
	many := map[string]string{}
	for i := range maxNetlifyEnv + 5 {
		many["HUGO_PARAMS_P"+strings.Repeat("X", i)] = "v"
	}
	if pass, skipped := netlifyBuildEnv(many, nil); len(pass) != maxNetlifyEnv || len(skipped) != 5 {
		t.Errorf("%d variables: %d passed, %d skipped; want %d and 5", len(many), len(pass), len(skipped), maxNetlifyEnv)
	}
}
