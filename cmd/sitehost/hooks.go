package main

import (
	"log/slog"
	"net/http"
	"slices"

	"github.com/sitehost/sitehost/internal/accesslog"
	"github.com/sitehost/sitehost/internal/bearer"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/hooks"
	"github.com/sitehost/sitehost/internal/reconcile"
)

var _ hooks.EventDispatcher = (*reconcile.Loop)(nil)

// repoSites finds the sites that declare a repository, by hooks.RepoKey, so
// https, ssh and .git spellings of one repository match. A site is filed
// under every key of hooks.RepoKeys, so that Bitbucket Data Center payloads
// without clone links find it by project and slug.
type repoSites map[string][]hooks.SiteSecret

func newRepoSites(cfg *config.Config, getenv func(string) string, logger *slog.Logger) repoSites {
	r := repoSites{}
	for _, sc := range cfg.Sites {
		secret := ""
		if sc.Webhook.SecretEnv != "" {
			secret = getenv(sc.Webhook.SecretEnv)
			if secret == "" {
				logger.Warn("forge webhooks refused for this site: its secret is not set", "site", sc.Name, "env", sc.Webhook.SecretEnv)
			}
		}
		for _, k := range hooks.RepoKeys(sc.Repo) {
			r[k] = append(r[k], hooks.SiteSecret{Name: sc.Name, Secret: secret})
		}
	}
	return r
}

func (r repoSites) SitesForRepo(urls []string) []hooks.SiteSecret {
	var out []hooks.SiteSecret
	seen := map[string]bool{}
	for _, u := range urls {
		k := hooks.RepoKey(u)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, r[k]...)
	}
	return out
}

// reloadable routes webhooks by the current config's repositories.
type reloadable struct{ s *server }

func (r reloadable) SitesForRepo(urls []string) []hooks.SiteSecret {
	out := r.s.rt.Load().repos.SitesForRepo(urls)
	if cr := r.s.configRepo; cr != nil {
		for _, u := range urls {
			if k := hooks.RepoKey(u); k != "" && slices.Contains(hooks.RepoKeys(cr.url), k) {
				out = append(out, hooks.SiteSecret{Name: configSite, Secret: cr.secret})
				break
			}
		}
	}
	return out
}

// webhookHandlers are the /hooks/{name} endpoints of the admin handler.
func (s *server) webhookHandlers(guard *bearer.Guard) map[string]http.Handler {
	forge := &hooks.Forge{
		Sites:    reloadable{s},
		Dispatch: configDispatch{s},
		Logger:   s.log.With("component", "hooks"),
	}
	h := map[string]http.Handler{
		"generic": &hooks.Generic{Guard: guard, Dispatch: configDispatch{s}, Logger: s.log.With("component", "hooks")},
	}
	for _, name := range []string{"github", "gitlab", "gitea", "forgejo", "bitbucket"} {
		h[name] = forge
	}
	for name, hh := range h {
		h[name] = s.countWebhooks(name, hh)
	}
	return h
}

// countWebhooks counts deliveries to a /hooks/{forge} endpoint by the
// answer they got.
func (s *server) countWebhooks(forge string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &accesslog.Recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		s.metrics.Webhook(forge, rec.Code())
	})
}
