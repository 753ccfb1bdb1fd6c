package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/gittest"
)

// BenchmarkReload times one config reload of a config with many sites in
// which one site's build.env changed: compile, prepare the changed
// site's worker, the swap, and stopping the old worker. The sites share
// one repository and build with tool none; the changed site's new worker
// syncs in the background after the reload returns (not timed).
func BenchmarkReload(b *testing.B) {
	for _, n := range []int{10, 200} {
		b.Run(fmt.Sprintf("sites=%d", n), func(b *testing.B) {
			repo := gittest.New(b, "")
			repo.Write("index.html", "<h1>bench</h1>")
			repo.Commit("bench")
			sitesYAML := func(v int) string {
				var sb strings.Builder
				for i := range n {
					env := ""
					if i == 0 {
						env = fmt.Sprintf(", env: {V: \"%d\"}", v)
					}
					fmt.Fprintf(&sb, "  - name: s%03d\n    repo: %s\n    domains: [s%03d.test]\n    build: {tool: none%s}\n", i, repo.URL(), i, env)
				}
				return sb.String()
			}
			cfg := testConfig(b, b.TempDir(), sitesYAML(0))
			srv := startServer(b, cfg, map[string]string{"TEST_TOKEN": testToken})
			doc, err := os.ReadFile(cfg.File)
			if err != nil {
				b.Fatal(err)
			}
			head, _, _ := strings.Cut(string(doc), "sites:\n")
			docs := [2][]byte{[]byte(head + "sites:\n" + sitesYAML(1)), []byte(head + "sites:\n" + sitesYAML(2))}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := srv.reloadFile(b.Context(), cfg.File, docs[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
