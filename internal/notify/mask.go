package notify

import (
	"net/url"
	"strings"

	"github.com/sitehost/sitehost/internal/site"
)

// pathSecretHosts are webhook services whose URL path is the credential.
var pathSecretHosts = []string{"hooks.slack.com", "discord.com", "discordapp.com", "webhook.office.com"}

// maskURL returns raw safe to log: userinfo and query become "…", and so
// does the path of a Slack-format target or a known webhook host, where
// the path is the token (hooks.slack.com/services/T…/B…/<secret>,
// Mattermost's /hooks/<key>).
func maskURL(raw string, f Format) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if u.User != nil {
		b.WriteString("…@")
	}
	b.WriteString(u.Host)
	switch path := u.EscapedPath(); {
	case path == "" || path == "/":
		b.WriteString(path)
	case f == Slack || pathSecretHost(u.Hostname()):
		b.WriteString("/…")
	default:
		b.WriteString(path)
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteString("?…")
	}
	return b.String()
}

func pathSecretHost(host string) bool {
	host = site.Hostname(host)
	for _, h := range pathSecretHosts {
		if host == h || strings.HasSuffix(host, "."+h) {
			return true
		}
	}
	return false
}
