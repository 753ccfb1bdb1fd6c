package dashboard

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/site"
)

// link is an anchor: Text, and URL when there is one.
type link struct {
	Text string
	URL  string
}

// siteView is a site as the overview and the site page show it.
type siteView struct {
	api.Site
	// Live is the production channel's live commit, nil if none.
	Live     *api.Commit
	Domains  []link
	Previews []api.Channel // every channel but production
	// ErrorLine is the first line of the error when the site failed.
	ErrorLine string
}

func newSiteView(s api.Site) siteView {
	v := siteView{Site: s, Domains: domainLinks(s.URL, s.Domains)}
	for i, c := range s.Channels {
		if c.Name != site.Production {
			v.Previews = append(v.Previews, c)
			continue
		}
		v.Live = s.Channels[i].Live
	}
	if v.Live == nil && s.LiveCommit != "" {
		v.Live = &api.Commit{SHA: s.LiveCommit}
	}
	if s.State == site.Failed {
		v.ErrorLine = firstLine(s.Error)
	}
	return v
}

// domainLinks links the primary domain to the site's URL and every other
// domain to the same scheme and port on its own host, so the links work
// behind a non-standard port too.
func domainLinks(siteURL string, domains []string) []link {
	u, err := url.Parse(siteURL)
	links := make([]link, 0, len(domains))
	for _, d := range domains {
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			links = append(links, link{Text: d})
		case strings.EqualFold(u.Hostname(), d):
			links = append(links, link{Text: d, URL: siteURL})
		default:
			host := d
			if p := u.Port(); p != "" {
				host = net.JoinHostPort(d, p)
			}
			links = append(links, link{Text: d, URL: (&url.URL{Scheme: u.Scheme, Host: host, Path: "/"}).String()})
		}
	}
	return links
}

type overviewView struct {
	Sites []siteView
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) error {
	sites, err := h.src.Sites(r.Context())
	if err != nil {
		return sourceError(err, "site list")
	}
	v := overviewView{Sites: make([]siteView, 0, len(sites))}
	for _, s := range sites {
		v.Sites = append(v.Sites, newSiteView(s))
	}
	h.render(w, r, http.StatusOK, "overview", page{Title: "Sites", Refresh: true, Data: v})
	return nil
}

type sitePageView struct {
	siteView
	Deploys       []api.Deploy
	SyncRequested bool
}

func (h *Handler) sitePage(w http.ResponseWriter, r *http.Request) error {
	name := site.Name(r.PathValue("site"))
	s, err := h.src.Site(r.Context(), name)
	if err != nil {
		return sourceError(err, "site named "+string(name))
	}
	deploys, err := h.src.Deploys(r.Context(), name, "", historyLimit)
	if err != nil {
		return sourceError(err, "deploy history of "+string(name))
	}
	v := sitePageView{
		siteView:      newSiteView(s),
		Deploys:       deploys,
		SyncRequested: r.URL.Query().Get("sync") == "requested",
	}
	h.render(w, r, http.StatusOK, "site", page{Title: string(name), Refresh: true, Data: v})
	return nil
}

func (h *Handler) sync(w http.ResponseWriter, r *http.Request) error {
	name := site.Name(r.PathValue("site"))
	if err := h.src.Trigger(name); err != nil {
		return sourceError(err, "site named "+string(name))
	}
	h.log.Info("sync requested from the dashboard", "site", name)
	http.Redirect(w, r, "/sites/"+url.PathEscape(string(name))+"?sync=requested", http.StatusSeeOther)
	return nil
}

type deployPageView struct {
	Site site.Name
	D    api.DeployDetail
	Log  string
	// LogNote explains an empty or unreadable log.
	LogNote string
	// Building: the page refreshes (no JS) or streams the log (JS).
	Building  bool
	StreamURL string
}

func (h *Handler) deployPage(w http.ResponseWriter, r *http.Request) error {
	name := site.Name(r.PathValue("site"))
	id := site.DeployID(r.PathValue("id"))
	d, err := h.src.Deploy(r.Context(), name, id)
	if err != nil {
		return sourceError(err, "deploy "+string(id)+" of site "+string(name))
	}
	v := deployPageView{Site: name, D: d, Building: d.State == site.OutcomeBuilding}
	// The detail is worth showing without its log, so a log that cannot be
	// read is a note on the page rather than an error page.
	text, err := h.src.Log(r.Context(), name, id)
	switch {
	case errors.Is(err, api.ErrNotFound):
		v.LogNote = "No build log was recorded for this deploy."
	case err != nil:
		h.log.Error("reading build log", "site", name, "deploy", id, "err", err)
		v.LogNote = "The build log could not be read; the server log has the details."
	case len(text) == 0 && !v.Building:
		v.LogNote = "The build log is empty."
	}
	v.Log = string(text)
	if v.Building {
		v.StreamURL = api.Prefix + "/sites/" + url.PathEscape(string(name)) + "/deploys/" + url.PathEscape(string(id)) + "/log"
	}
	h.render(w, r, http.StatusOK, "deploy", page{Title: "Deploy " + string(id) + " · " + string(name), Data: v})
	return nil
}
