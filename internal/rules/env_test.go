package rules_test

import (
	"maps"
	"testing"

	"github.com/sitehost/sitehost/internal/rules"
)

func TestNetlifyEnv(t *testing.T) {
	const toml = `
[build]
  command = "hugo --gc --minify"
  [build.environment]
    HUGO_VERSION = "0.123.4"
    HUGO_ENV = "production"
    TZ = 'UTC'
    NUMBER = 3

[context.production.environment]
  HUGO_ENABLEGITINFO = "true"

[context.deploy-preview.environment]
  HUGO_VERSION = "0.124.1"

[context.branch-deploy.environment]
  HUGO_VERSION = "0.125.0"

[context.staging.environment]
  HUGO_VERSION = "0.126.0"

[[redirects]]
  from = "/a"
  to = "/b"
`
	base := map[string]string{"HUGO_VERSION": "0.123.4", "HUGO_ENV": "production", "TZ": "UTC", "NUMBER": "3"}
	with := func(k, v string) map[string]string {
		m := maps.Clone(base)
		m[k] = v
		return m
	}
	for _, tt := range []struct {
		name     string
		toml     string
		contexts []string
		want     map[string]string
	}{
		{"production", toml, []string{rules.ContextProduction}, with("HUGO_ENABLEGITINFO", "true")},
		{"deploy preview", toml, []string{rules.ContextDeployPreview}, with("HUGO_VERSION", "0.124.1")},
		{"branch deploy", toml, []string{rules.ContextBranchDeploy, "feature"}, with("HUGO_VERSION", "0.125.0")},
		{"branch's own context wins", toml, []string{rules.ContextBranchDeploy, "staging"}, with("HUGO_VERSION", "0.126.0")},
		{"no context", toml, nil, base},
		{"no environment", "[build]\ncommand = 'hugo'\n", []string{rules.ContextProduction}, map[string]string{}},
		{"does not parse", "[build\n", []string{rules.ContextProduction}, nil},
		{"context is not a table", "context = 3\n[build.environment]\nA = 'b'\n", []string{rules.ContextProduction}, map[string]string{"A": "b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := rules.NetlifyEnv([]byte(tt.toml), tt.contexts...); !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
