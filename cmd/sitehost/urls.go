package main

import (
	"net"

	"github.com/sitehost/sitehost/internal/preview"
	"github.com/sitehost/sitehost/internal/site"
)

// baseURL is a site's public URL: its host on our HTTP or HTTPS port, or
// "/" (relative links) for a site without domains.
func baseURL(scheme, domain, port string) string {
	if domain == "" {
		return "/"
	}
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		return scheme + "://" + domain + "/"
	}
	return scheme + "://" + net.JoinHostPort(domain, port) + "/"
}

func portOf(a net.Addr) string {
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return port
}

// permalink is a deploy's immutable URL (DESIGN §5).
func (s *server) permalink(n site.Name, id site.DeployID) string {
	scheme, port := s.publicScheme()
	return baseURL(scheme, string(id)+"--"+string(n)+"."+s.cfg.Server.PreviewDomain, port)
}

// publicScheme is how sites are reached: HTTPS when it is on.
// A builder binds neither: the edges' ports are the config's.
func (s *server) publicScheme() (scheme, port string) {
	switch sc := s.cfg.Server; {
	case s.httpsLn != nil:
		return "https", portOf(s.httpsLn.Addr())
	case s.httpLn != nil:
		return "http", portOf(s.httpLn.Addr())
	case sc.HTTPS != "":
		return "https", configPort(sc.HTTPS)
	default:
		return "http", configPort(sc.HTTP)
	}
}

// channelURL is a channel's public URL: its build's base URL.
func (s *server) channelURL(n site.Name, c site.Channel) string {
	scheme, port := s.publicScheme()
	if c == site.Production {
		return baseURL(scheme, s.rt.Load().primary[n], port)
	}
	return baseURL(scheme, preview.ChannelHost(c, n, s.cfg.Server.PreviewDomain), port)
}
