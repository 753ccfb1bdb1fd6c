package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/admin"
)

// TestShortTokenRefused: an admin token under 32 characters is refused
// with the same reason by `sitehost validate`, at startup and on reload
// (a reload naming another variable; the token is read at startup).
func TestShortTokenRefused(t *testing.T) {
	const reason = " is too short: 12 characters, at least 32 needed (make one with: openssl rand -hex 16)"
	want := "server.api_token_env: the admin token in $SHORT_TOKEN" + reason
	env := map[string]string{"SHORT_TOKEN": "short-secret", "TEST_TOKEN": testToken}
	cfg := testConfig(t, t.TempDir(), "  - name: blog\n    repo: /nonexistent\n    domains: [blog.test]\n    build: {tool: none}\n")
	doc, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(doc), "api_token_env: TEST_TOKEN", "api_token_env: SHORT_TOKEN", 1)

	t.Run("validate", func(t *testing.T) {
		if err := os.WriteFile(cfg.File, []byte(short), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(cfg.File, doc, 0o644) //nolint:errcheck // the next subtest rewrites it
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"validate", "-c", cfg.File}, func(k string) string { return env[k] }, &out, &errOut)
		wantExitError(t, err)
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("validate said %q, want %q", errOut.String(), want)
		}
		// The token the tests use passes.
		out.Reset()
		errOut.Reset()
		if err := run(context.Background(), []string{"validate", "-c", cfg.File}, func(k string) string {
			if k == "SHORT_TOKEN" {
				return testToken
			}
			return env[k]
		}, &out, &errOut); err != nil {
			t.Errorf("validate with a 32-character token: %v\n%s", err, errOut.String())
		}
	})

	t.Run("startup", func(t *testing.T) {
		getenv := func(k string) string { return map[string]string{"TEST_TOKEN": "short-secret"}[k] }
		srv, err := newServer(t.Context(), cfg, serverOptions{Getenv: getenv, Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			srv.close()
			t.Fatal("a server started with a 12-character token")
		}
		if want := "server.api_token_env: the admin token in $TEST_TOKEN" + reason; !strings.Contains(err.Error(), want) {
			t.Errorf("startup: %v, want %q", err, want)
		}
	})

	t.Run("reload", func(t *testing.T) {
		ts := startServerUntil(t, cfg, env, serverOptions{})
		err := ts.reloadFile(t.Context(), cfg.File, []byte(short))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("reload: %v, want %q", err, want)
		}
	})
}

// TestWideAdminWarning: an admin listener bound to every address warns,
// naming every path it answers by what each asks for: /metrics and the
// probes answer anyone.
func TestWideAdminWarning(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "  - name: blog\n    repo: /nonexistent\n    domains: [blog.test]\n    build: {tool: none}\n")
	cfg.Server.Admin = "0.0.0.0:0"
	ts := startServerUntil(t, cfg, nil, serverOptions{})
	var line string
	for _, l := range strings.Split(ts.logs.String(), "\n") {
		if strings.Contains(l, "reachable from other machines") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no warning in:\n%s", ts.logs.String())
	}
	for _, want := range []string{
		`open="GET /assets/{file}, /healthz, GET /login, POST /login, POST /logout, /metrics, /readyz"`,
		"with_token=\"GET /, GET /api/v1/config, GET /api/v1/sites,",
		"POST /api/v1/sites/{site}/sync", "GET /api/v1/sites/{site}/deploys/{id}/log", "POST /sites/{site}/sync",
		"/hooks/generic", "/hooks/github", "/hooks/bitbucket",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("warning lacks %q:\n%s", want, line)
		}
	}
	// Every route the handler has is named.
	for _, r := range ts.server.admin.(*admin.Handler).Routes() {
		if !strings.Contains(line, r.String()) {
			t.Errorf("warning lacks route %s", r)
		}
	}

	// Loopback: no warning.
	quiet := startServerUntil(t, testConfig(t, t.TempDir(), "  - name: blog\n    repo: /nonexistent\n    domains: [blog.test]\n    build: {tool: none}\n"), nil, serverOptions{})
	if strings.Contains(quiet.logs.String(), "reachable from other machines") {
		t.Error("a loopback admin listener warned")
	}
}
