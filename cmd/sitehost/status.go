package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/site"
)

// cmdStatus prints sites, channels, live and desired commits and sync
// states, from the admin API of a running server.
func cmdStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	path := fs.String("c", "", "config file, for the admin address and token (default: SITEHOST_ADMIN and SITEHOST_API_TOKEN, else sites.yaml)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if err := fs.Parse(args); err != nil {
		return exitError{err}
	}
	endpoint, token, err := adminClient(*path, getenv)
	if err != nil {
		return err
	}
	var sites []api.Site
	var raw json.RawMessage
	if name := fs.Arg(0); name != "" {
		raw, err = apiCall(ctx, endpoint+"/api/v1/sites/"+name, token)
		if err == nil {
			sites = append(sites, api.Site{})
			err = json.Unmarshal(raw, &sites[0])
		}
	} else {
		raw, err = apiCall(ctx, endpoint+"/api/v1/sites", token)
		if err == nil {
			var all struct {
				Sites json.RawMessage `json:"sites"`
			}
			if err = json.Unmarshal(raw, &all); err == nil {
				err = json.Unmarshal(all.Sites, &sites)
			}
		}
	}
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := fmt.Fprintln(stdout, string(raw))
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tCHANNEL\tSTATE\tLIVE\tDESIRED\tDEPLOY\tURL\tERROR")
	for _, s := range sites {
		for _, cs := range s.Channels {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, cs.Name, cs.State, short(cs.LiveCommit), short(cs.Desired), cs.LiveDeploy, cs.URL, oneLine(cs.Error, 60))
		}
	}
	return tw.Flush()
}

func short(c site.Commit) string {
	if c == "" {
		return "-"
	}
	return c.Short()
}

func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// adminClient finds the admin API and its token: SITEHOST_ADMIN and
// SITEHOST_API_TOKEN when set, else the config's server.admin and
// api_token_env.
func adminClient(path string, getenv func(string) string) (endpoint, token string, err error) {
	addr, token := getenv("SITEHOST_ADMIN"), getenv("SITEHOST_API_TOKEN")
	if addr == "" || token == "" {
		if path == "" {
			path = "sites.yaml"
		}
		cfg, err := config.Load(path)
		if err != nil {
			if addr == "" {
				return "", "", fmt.Errorf("finding the admin API: set SITEHOST_ADMIN, or give the config with -c: %w", err)
			}
		} else {
			if addr == "" {
				addr = cfg.Server.Admin
			}
			if token == "" {
				token = getenv(cfg.Server.APITokenEnv)
			}
		}
	}
	if !strings.Contains(addr, "://") {
		if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		addr = "http://" + addr
	}
	return strings.TrimSuffix(addr, "/"), token, nil
}

// apiCall GETs an admin API URL and returns its body, turning failures
// into errors a person can act on.
func apiCall(ctx context.Context, url, token string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return nil, fmt.Errorf("sitehost is not reachable at %s (is it running? SITEHOST_ADMIN / server.admin): %w", req.URL.Host, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, errors.New("the admin API refused the token: set SITEHOST_API_TOKEN (or the config's api_token_env) to the server's token")
	case resp.StatusCode != http.StatusOK:
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(body, &e) //nolint:errcheck // the status says enough without it
		return nil, fmt.Errorf("%s: %s %s", url, resp.Status, e.Error)
	}
	return body, nil
}
