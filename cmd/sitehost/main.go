// Command sitehost builds static sites from git and serves them: a Netlify
// you run yourself. See the README and DESIGN for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/sitehost/sitehost/internal/unixonly" // no Windows: README, Platforms
)

func main() {
	if code, ok := child(os.Args); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ee exitError
		if !errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, "sitehost:", err)
		}
		os.Exit(1)
	}
}
