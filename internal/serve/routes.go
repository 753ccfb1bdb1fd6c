package serve

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"time"

	"github.com/sitehost/sitehost/internal/preview"
	"github.com/sitehost/sitehost/internal/site"
)

// Routes are the served sites and the hosts that reach them. They are
// built whole from a config by NewRoutes, which refuses what cannot be
// routed, and never change: a reload builds new ones and swaps them in
// with Handler.SetRoutes.
type Routes struct {
	previewDomain string
	domains       map[string]route // production and alias hosts
	sites         map[site.Name]*Site
}

type route struct {
	site  *Site
	alias string // for an alias: the primary domain it redirects to
}

// NewRoutes routes sites: each site's domains (the first is primary, the
// others redirect to it) and its preview, branch and permalink hosts under
// previewDomain. It fails when two sites share a name or a domain.
func NewRoutes(sites []Site, previewDomain string) (*Routes, error) {
	rt := &Routes{
		previewDomain: NormalizeHost(previewDomain),
		domains:       make(map[string]route),
		sites:         make(map[site.Name]*Site, len(sites)),
	}
	for _, s := range sites {
		if err := s.Name.Valid(); err != nil {
			return nil, fmt.Errorf("routing site %q: %w", s.Name, err)
		}
		if rt.sites[s.Name] != nil {
			return nil, fmt.Errorf("routing site %s: listed twice", s.Name)
		}
		if s.Rules.ProxyTimeout <= 0 {
			s.Rules.ProxyTimeout = 26 * time.Second
		}
		if s.Rules.ProxyMaxBytes <= 0 {
			s.Rules.ProxyMaxBytes = 64 << 20
		}
		domains := s.Domains
		st := &s
		st.Domains = make([]string, len(domains)) // the caller's slice stays theirs
		for i, d := range domains {
			host := NormalizeHost(d)
			if host == "" {
				return nil, fmt.Errorf("routing site %s: empty domain", s.Name)
			}
			if prev, dup := rt.domains[host]; dup {
				return nil, fmt.Errorf("routing site %s: domain %s is also %s's", s.Name, host, prev.site.Name)
			}
			st.Domains[i] = host
			r := route{site: st}
			if i > 0 {
				r.alias = st.Domains[0]
			}
			rt.domains[host] = r
		}
		rt.sites[s.Name] = st
	}
	return rt, nil
}

// Target is what a host names: a channel of a site, one of its deploys
// (a permalink), or an alias that redirects to the site's primary domain.
type Target struct {
	Host    string // the host, normalised
	Site    site.Name
	Channel site.Channel // production for production and alias hosts; "" for permalinks
	Deploy  site.DeployID
	// Alias is set for an alias host: the primary domain it redirects to.
	Alias string
	// Preview is set for preview, branch and permalink hosts.
	Preview bool

	site *Site // the settings of the Routes that resolved it
}

// Resolve answers which site and channel host names: one of the
// production or alias domains, or a preview, branch or permalink host of a
// routed site (whether or not that channel exists). host may carry a port,
// a trailing dot and capitals. On a miss only Target.Host is set.
func (rt *Routes) Resolve(host string) (Target, bool) {
	host = NormalizeHost(host)
	if rt == nil {
		return Target{Host: host}, false
	}
	if r, ok := rt.domains[host]; ok {
		return Target{Host: host, Site: r.site.Name, Channel: site.Production, Alias: r.alias, site: r.site}, true
	}
	p, ok := preview.ParseHost(host, rt.previewDomain)
	if !ok || rt.sites[p.Site] == nil {
		return Target{Host: host}, false
	}
	return Target{Host: host, Site: p.Site, Channel: p.Channel, Deploy: p.Deploy, Preview: true, site: rt.sites[p.Site]}, true
}

// site returns the settings of site n, nil when it is not routed.
func (rt *Routes) site(n site.Name) *Site {
	if rt == nil {
		return nil
	}
	return rt.sites[n]
}

// sameSettings reports whether a and b are the same site with the same
// settings, so that what was compiled for one serves the other.
func sameSettings(a, b *Site) bool {
	return a == b || a != nil && b != nil && reflect.DeepEqual(*a, *b)
}

// NormalizeHost is a request's Host as routes know it: without the port,
// then site.Hostname.
func NormalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return site.Hostname(h)
}

// slot carries a request's target from Resolve to the handlers inside it.
// Observe, outside Resolve, makes it, so it can label the answer with the
// site Resolve found; otherwise Resolve makes its own. It is the request's
// context itself, so carrying it costs one allocation, not two.
type slot struct {
	context.Context
	t  Target
	ok bool
}

type slotKey struct{}

func (s *slot) Value(key any) any {
	if key == (slotKey{}) {
		return s
	}
	return s.Context.Value(key)
}

// withSlot returns r with a new, empty slot in its context.
func withSlot(r *http.Request) (*http.Request, *slot) {
	sl := &slot{Context: r.Context()}
	return r.WithContext(sl), sl
}

// TargetFrom returns the target Resolve found for the request of ctx.
func TargetFrom(ctx context.Context) (Target, bool) {
	s, ok := ctx.Value(slotKey{}).(*slot)
	if !ok || !s.ok {
		return Target{}, false
	}
	return s.t, true
}
