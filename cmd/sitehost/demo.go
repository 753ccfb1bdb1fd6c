package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sitehost/sitehost/internal/demo"
	"github.com/sitehost/sitehost/internal/site"
)

const demoConfig = `# Written by 'sitehost demo'. Edit it and run: sitehost serve -c %[1]s
server:
  data_dir: ./data
  http: %[2]q
  admin: %[3]q
  preview_domain: localhost
  poll_interval: 2s   # the demo polls its repo; production setups add webhooks
  shutdown_delay: 0s  # Ctrl-C stops at once: no load balancer to tell
sites:
  - name: demo
    repo: ./site      # a local git repository
    ref: main
    domains: [localhost]
`

func cmdDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	httpAddr := fs.String("http", ":8080", "address to serve the site on")
	adminAddr := fs.String("admin", "127.0.0.1:0", "address of the admin API (0: any free port)")
	dir := fs.String("dir", demo.Path(), "where the demo keeps its git repo and data")
	if err := fs.Parse(args); err != nil {
		return exitError{err}
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	repo := filepath.Join(*dir, "site")
	created, err := demo.CreateRepo(repo)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(*dir, "sites.yaml")
	data := fmt.Appendf(nil, demoConfig, cfgPath, *httpAddr, *adminAddr)
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		return fmt.Errorf("writing demo config: %w", err)
	}
	cfg, err := parseConfig(cfgPath, data, stderr)
	if err != nil {
		return err
	}
	token := getenv("SITEHOST_API_TOKEN")
	if token == "" {
		token = randomToken()
	}
	env := func(k string) string {
		if k == cfg.Server.APITokenEnv {
			return token
		}
		return getenv(k)
	}
	srv, err := newServer(ctx, cfg, serverOptions{Getenv: env, Logger: newLogger(stderr, getenv)})
	if err != nil {
		return err
	}
	printDemoHelp(stdout, demoHelp{
		Repo: repo, Created: created, Config: cfgPath, URL: srv.channelURL("demo", site.Production),
		Admin: "http://" + srv.adminLn.Addr().String(), Token: token,
	})
	return srv.run(ctx)
}

type demoHelp struct {
	Repo, Config, URL, Admin, Token string
	Created                         bool
}

func printDemoHelp(w io.Writer, h demoHelp) {
	state := "Using the example site repository at"
	if h.Created {
		state = "Created an example site repository at"
	}
	fmt.Fprintf(w, `
sitehost demo
  %s
    %s
  Config: %s

  Your site:  %s   (the first build takes a few seconds)

  Publish a change with git:
    cd %s
    sed -i 's/Welcome!/Hello from git!/' content/_index.md
    git commit -am "Say hello"
  sitehost polls the repo every 2 s; reload the page to see it live.

  Roll it back, instantly (no rebuild: this tree was built before):
    git revert --no-edit HEAD

  Dashboard:  %[7]s/   (log in with the token %[6]s)
  Terminal:   export SITEHOST_ADMIN=%[7]s SITEHOST_API_TOKEN=%[6]s
              sitehost status; sitehost deploys demo; sitehost logs -f demo
  API:        curl -H 'Authorization: Bearer %[6]s' %[7]s/api/v1/sites
  Stop with Ctrl-C. Run 'sitehost demo' again to continue where you left off.

`, state, h.Repo, h.Config, h.URL, shellQuote(h.Repo), h.Token, h.Admin)
}

func shellQuote(s string) string {
	if !strings.ContainsAny(s, " '\"$\\") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b) //nolint:errcheck // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
