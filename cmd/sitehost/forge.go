package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/forge"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// statusReporter turns the loop's deploy reports into forge commit
// statuses for the sites that configure `forge:`.
type statusReporter struct {
	reporter *forge.Reporter
	logger   *slog.Logger
	clients  atomic.Pointer[map[site.Name]forge.Client]
}

var _ reconcile.Reporter = (*statusReporter)(nil)

func newStatusReporter(cfg *config.Config, getenv func(string) string, logger *slog.Logger) (*statusReporter, error) {
	r := &statusReporter{reporter: forge.NewReporter(logger, forge.ReporterOptions{}), logger: logger}
	return r, r.setSites(cfg, getenv)
}

// setSites makes a forge client for each site of cfg that configures one.
func (r *statusReporter) setSites(cfg *config.Config, getenv func(string) string) error {
	logger := r.logger
	clients := map[site.Name]forge.Client{}
	httpClient := &http.Client{Timeout: 30 * time.Second}
	for _, sc := range cfg.Sites {
		if sc.Forge.Kind == "" {
			continue
		}
		token := getenv(sc.Forge.TokenEnv)
		if token == "" {
			logger.Warn("forge statuses off: the token is not set", "site", sc.Name, "env", sc.Forge.TokenEnv)
			continue
		}
		c, err := forge.New(forge.Config{Kind: sc.Forge.Kind, API: sc.Forge.API, Token: token, Repo: sc.Repo}, httpClient)
		if err != nil {
			return fmt.Errorf("site %s: forge: %w", sc.Name, err)
		}
		clients[sc.Name] = c
	}
	r.clients.Store(&clients)
	return nil
}

// Report never blocks: the forge reporter queues and retries.
func (r *statusReporter) Report(name site.Name, rep reconcile.Report) {
	c, ok := (*r.clients.Load())[name]
	if !ok || rep.State == "removed" {
		return
	}
	state := forge.Pending
	switch rep.State {
	case "success":
		state = forge.Success
	case "failure":
		state = forge.Failure
	}
	r.reporter.Report(c, forge.Status{
		Commit: rep.Commit, State: state, TargetURL: rep.URL,
		Description: rep.Message, Context: "sitehost/" + string(rep.Channel),
	})
}
