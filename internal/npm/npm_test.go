package npm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/npm"
	"github.com/sitehost/sitehost/internal/npm/npmtest"
	"github.com/sitehost/sitehost/internal/sandbox"
)

// The test binary is the sandbox's launcher, as sitehost is the server's.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.Arg {
		os.Exit(sandbox.Main(os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

// support is the sandbox installs run in, as the server's do: this
// system's, with the test binary as the launcher.
func support(t *testing.T) *sandbox.Support {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return sandbox.Detect(self)
}

// installer is a sandboxed Installer, as the server makes it.
func installer(t *testing.T, reg *npmtest.Registry, node, npmExe, token string) (*npm.Installer, string) {
	t.Helper()
	cache := t.TempDir()
	return npm.New(npm.Options{NPM: npmExe, Node: node, Registry: reg.URL, Token: token, CacheDir: cache, Sandbox: support(t)}), cache
}

// checkout copies the site's package.json and lockfile into a fresh dir,
// as an export of the same commit would be.
func checkout(t *testing.T, site string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"package.json", "package-lock.json"} {
		data, err := os.ReadFile(filepath.Join(site, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSecondInstallWithTheSameLockfileAsksNoRegistry(t *testing.T) {
	node, npmExe := npmtest.Tools(t)
	reg := npmtest.NewRegistry(t)
	site := t.TempDir()
	npmtest.Site(t, site, reg, npmExe, node, map[string]any{"devDependencies": map[string]string{"is-number": "7.0.0"}})
	in, cache := installer(t, reg, node, npmExe, "")
	ctx := context.Background()
	// What an install killed mid-way leaves: its stage, and its lock
	// file, which nobody holds any more (tempdir; a real kill is
	// fsstore's TestKilledWritersTempRemoved).
	leftover := filepath.Join(cache, "blog", ".install-99999-0123456789ab")
	if err := os.MkdirAll(filepath.Join(leftover, "work", "node_modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leftover+".lock", nil, 0o644); err != nil {
		t.Fatal(err)
	}

	first := checkout(t, site)
	before := reg.Requests()
	res, err := in.Install(ctx, "blog", first, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cached || res.Lockfile != "package-lock.json" || res.Packages == 0 || res.Sandbox == "" || res.Sandbox == "unsandboxed" {
		t.Fatalf("first install: %+v", res)
	}
	t.Logf("sandbox: %s", res.Sandbox)
	if reg.Requests() == before {
		t.Fatal("the first install asked the registry nothing: the count is not counting")
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("the killed install's stage survived the next install: %v", err)
	}
	if stages, _ := filepath.Glob(filepath.Join(cache, "blog", ".install-*")); len(stages) != 0 {
		t.Errorf("stages left after the install: %q", stages)
	}
	index := filepath.Join(first, "node_modules", "is-number", "index.js")
	if _, err := os.Stat(index); err != nil {
		t.Fatal(err)
	}
	// A build that writes into its node_modules must not reach the cache.
	if err := os.WriteFile(index, []byte("module.exports = 'planted'"), 0o644); err != nil {
		t.Fatal(err)
	}

	before = reg.Requests()
	second := checkout(t, site)
	res, err = in.Install(ctx, "blog", second, false)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Cached {
		t.Fatalf("second install not from the cache: %+v", res)
	}
	if n := reg.Requests() - before; n != 0 {
		t.Fatalf("second install made %d registry requests: %v", n, reg.Paths())
	}
	data, err := os.ReadFile(filepath.Join(second, "node_modules", "is-number", "index.js"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "planted") {
		t.Fatal("a write into one checkout's node_modules reached the cache")
	}
	if _, err := os.Stat(filepath.Join(cache, "blog", res.Hash, "node_modules", "is-number")); err != nil {
		t.Fatalf("cache layout: %v", err)
	}
}

// postinstall is a script that leaves a marker file where it is told.
func postinstall(marker string) string {
	return "node -e \"require('fs').writeFileSync('" + marker + "', 'ran')\""
}

func TestInstallRunsNoPackageScripts(t *testing.T) {
	node, npmExe := npmtest.Tools(t)
	reg := npmtest.NewRegistry(t)
	markers := t.TempDir()
	dep, root := filepath.Join(markers, "dependency"), filepath.Join(markers, "root")
	reg.AddPackage(t, "sitehost-test-postinstall", "1.0.0", map[string]any{
		"scripts": map[string]any{"preinstall": postinstall(dep), "install": postinstall(dep), "postinstall": postinstall(dep)},
	}, map[string]string{"index.js": "module.exports = 1\n"})
	site := t.TempDir()
	npmtest.Site(t, site, reg, npmExe, node, map[string]any{
		"dependencies": map[string]string{"sitehost-test-postinstall": "1.0.0"},
		"scripts":      map[string]string{"preinstall": postinstall(root), "postinstall": postinstall(root), "prepare": postinstall(root)},
	})
	in, _ := installer(t, reg, node, npmExe, "")
	dir := checkout(t, site)
	if _, err := in.Install(context.Background(), "blog", dir, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "sitehost-test-postinstall", "index.js")); err != nil {
		t.Fatalf("the package was not installed: %v", err)
	}
	for _, m := range []string{dep, root} {
		if _, err := os.Stat(m); err == nil {
			t.Fatalf("an install script ran: %s exists", m)
		}
	}

	// Control: plain npm ci runs the dependency's script, so the marker
	// above could have appeared.
	control := checkout(t, site)
	home := t.TempDir()
	os.Symlink(node, filepath.Join(home, "node")) //nolint:errcheck // the run fails without it
	cmd := exec.Command(npmExe, "ci", "--no-audit", "--no-fund", "--registry="+reg.URL, "--cache="+filepath.Join(home, "cache"))
	cmd.Dir, cmd.Env = control, []string{"PATH=" + home + ":/usr/bin:/bin", "HOME=" + home}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("control npm ci: %v\n%s", err, out)
	}
	if _, err := os.Stat(dep); err != nil {
		t.Fatalf("control: npm ci with scripts did not run the postinstall: %v", err)
	}
}

func TestMissingPackageShowsNpmsMessage(t *testing.T) {
	node, npmExe := npmtest.Tools(t)
	reg := npmtest.NewRegistry(t)
	const name = "sitehost-no-such-package-4f1c2a"
	dir := t.TempDir()
	pkg := map[string]any{"name": "site", "dependencies": map[string]string{name: "1.0.0"}}
	lock := map[string]any{
		"name": "site", "lockfileVersion": 3, "requires": true,
		"packages": map[string]any{
			"":                     pkg,
			"node_modules/" + name: map[string]any{"version": "1.0.0"},
		},
	}
	for file, v := range map[string]any{"package.json": pkg, "package-lock.json": lock} {
		data, _ := json.Marshal(v)
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in, _ := installer(t, reg, node, npmExe, "")
	_, err := in.Install(context.Background(), "blog", dir, false)
	var ne *npm.Error
	if !errors.As(err, &ne) {
		t.Fatalf("want *npm.Error, got %v", err)
	}
	if ne.Code != "E404" || ne.Package != name || !strings.Contains(err.Error(), "Not Found") {
		t.Fatalf("error: code %q package %q: %v", ne.Code, ne.Package, err)
	}
	if k := fault.KindOf(err); k != fault.KindStalled {
		t.Fatalf("kind %s, want stalled", k)
	}
}

func TestPrivateInstallsStayWithTrustedBuilds(t *testing.T) {
	node, npmExe := npmtest.Tools(t)
	reg := npmtest.NewRegistry(t)
	reg.AddPackage(t, "sitehost-test-private", "1.0.0", map[string]any{}, map[string]string{"index.js": "secret\n"})
	reg.Private("sitehost-test-private", "s3cret-token")
	site := t.TempDir()
	reg.Token = "s3cret-token"
	npmtest.Site(t, site, reg, npmExe, node, map[string]any{"dependencies": map[string]string{"sitehost-test-private": "1.0.0"}})
	reg.Token = ""
	in, _ := installer(t, reg, node, npmExe, "s3cret-token")
	ctx := context.Background()
	if _, err := in.Install(ctx, "blog", checkout(t, site), false); err != nil {
		t.Fatalf("trusted install with the token: %v", err)
	}
	// The same lockfile from a fork: no token, and not the install the
	// token made.
	dir := checkout(t, site)
	_, err := in.Install(ctx, "blog", dir, true)
	if err == nil {
		t.Fatal("an untrusted build got the private package")
	}
	if _, statErr := os.Stat(filepath.Join(dir, "node_modules", "sitehost-test-private")); statErr == nil {
		t.Fatal("the private package is in the untrusted checkout")
	}
	t.Logf("untrusted: %v", err)
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   []string
		want    string
		wantErr string
	}{
		{"no package.json", []string{"package-lock.json"}, "", ""},
		{"no lockfile", []string{"package.json"}, "", ""},
		{"npm", []string{"package.json", "package-lock.json"}, "package-lock.json", ""},
		{"shrinkwrap first", []string{"package.json", "package-lock.json", "npm-shrinkwrap.json"}, "npm-shrinkwrap.json", ""},
		{"npm beside yarn", []string{"package.json", "package-lock.json", "yarn.lock"}, "package-lock.json", ""},
		{"pnpm", []string{"package.json", "pnpm-lock.yaml"}, "", "pnpm-lock.yaml"},
		{"yarn", []string{"package.json", "yarn.lock"}, "", "yarn.lock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := npm.Detect(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "only npm lockfiles") {
					t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
				}
				if fault.KindOf(err) != fault.KindStalled {
					t.Fatalf("kind %s", fault.KindOf(err))
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Detect = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestKeepsTheLastTwoLockfiles(t *testing.T) {
	node, npmExe := npmtest.Tools(t)
	reg := npmtest.NewRegistry(t)
	in, cache := installer(t, reg, node, npmExe, "")
	var hashes []string
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2"} {
		reg.AddPackage(t, "sitehost-test-a", v, map[string]any{}, map[string]string{"index.js": v})
		site := t.TempDir()
		npmtest.Site(t, site, reg, npmExe, node, map[string]any{"dependencies": map[string]string{"sitehost-test-a": v}})
		res, err := in.Install(context.Background(), "blog", site, false)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, res.Hash)
	}
	ents, err := os.ReadDir(filepath.Join(cache, "blog"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, e := range ents {
		kept = append(kept, e.Name())
	}
	if len(kept) != 2 || !strings.Contains(strings.Join(kept, " "), hashes[1]) || !strings.Contains(strings.Join(kept, " "), hashes[2]) {
		t.Fatalf("kept %v, want the last two of %v", kept, hashes)
	}
}

func TestInstallSizeLimit(t *testing.T) {
	node, npmExe := npmtest.Tools(t)
	reg := npmtest.NewRegistry(t)
	reg.AddPackage(t, "sitehost-test-big", "1.0.0", map[string]any{}, map[string]string{"big.txt": strings.Repeat("sitehost ", 400_000)}) // 3.6 MB
	site := t.TempDir()
	npmtest.Site(t, site, reg, npmExe, node, map[string]any{"dependencies": map[string]string{"sitehost-test-big": "1.0.0"}})
	for _, tt := range []struct {
		max  int64
		fail bool
	}{{1 << 20, true}, {16 << 20, false}} {
		in := npm.New(npm.Options{NPM: npmExe, Node: node, Registry: reg.URL, CacheDir: t.TempDir(), MaxBytes: tt.max, Sandbox: support(t)})
		dir := checkout(t, site)
		_, err := in.Install(context.Background(), "blog", dir, false)
		switch {
		case tt.fail && (err == nil || !strings.Contains(err.Error(), "wrote more than 1.0 MB") || fault.KindOf(err) != fault.KindStalled):
			t.Errorf("limit %d: want a stalled error over the limit, got %v", tt.max, err)
		case !tt.fail && err != nil:
			t.Errorf("limit %d: %v", tt.max, err)
		}
		if _, statErr := os.Stat(filepath.Join(dir, "node_modules", "sitehost-test-big")); tt.fail == (statErr == nil) {
			t.Errorf("limit %d: node_modules in the checkout: %v", tt.max, statErr)
		}
	}
}

// A server without npm builds a site with a lockfile as before: without
// node_modules, saying why.
func TestNoNPMSkips(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := npm.New(npm.Options{CacheDir: t.TempDir()}).Install(context.Background(), "blog", dir, false)
	if err != nil || !strings.Contains(res.Skipped, "no npm") || !strings.Contains(res.Skipped, "package-lock.json") {
		t.Fatalf("Install = %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil {
		t.Fatal("node_modules made without npm")
	}
}

// TestInstallReachesTheRegistryOnly: a lockfile whose package resolves
// to another host:port (a second registry on 127.0.0.1, as a host of the
// server's internal network would be) does not install, sandboxed or
// trusted and unsandboxed: the error names that host:port, and the other
// registry sees no connection. Plain npm ci fetches from it, so the
// refusal is sitehost's.
func TestInstallReachesTheRegistryOnly(t *testing.T) {
	node, npmExe := npmtest.Tools(t)
	reg, other := npmtest.NewRegistry(t), npmtest.NewRegistry(t)
	other.AddPackage(t, "sitehost-test-elsewhere", "1.0.0", map[string]any{}, map[string]string{"index.js": "module.exports = 1\n"})
	site := t.TempDir()
	npmtest.Site(t, site, other, npmExe, node, map[string]any{"dependencies": map[string]string{"sitehost-test-elsewhere": "1.0.0"}})
	o, _ := url.Parse(other.URL)
	before := other.Connections()

	for _, sandboxed := range []bool{true, false} {
		opts := npm.Options{NPM: npmExe, Node: node, Registry: reg.URL, CacheDir: t.TempDir(), Timeout: 2 * time.Minute}
		if sandboxed {
			opts.Sandbox = support(t)
		}
		dir := checkout(t, site)
		res, err := npm.New(opts).Install(context.Background(), "blog", dir, false)
		t.Logf("sandboxed %v: %s: %v", sandboxed, res.Sandbox, err)
		if sandboxed && !strings.Contains(res.Sandbox, "own network namespace") {
			if os.Getenv("CI") == "true" {
				t.Errorf("sandbox %q: want npm in a network namespace of its own", res.Sandbox)
			}
		}
		if err == nil {
			t.Fatalf("sandboxed %v: installed a package from %s", sandboxed, o.Host)
		}
		if !strings.Contains(err.Error(), "refused "+o.Host) {
			t.Errorf("sandboxed %v: the error does not name the refused %s: %v", sandboxed, o.Host, err)
		}
		if fault.KindOf(err) != fault.KindStalled {
			t.Errorf("sandboxed %v: kind %s, want stalled (the lockfile must change)", sandboxed, fault.KindOf(err))
		}
		if n := other.Connections() - before; n != 0 {
			t.Fatalf("sandboxed %v: the other registry got %d connections: %v", sandboxed, n, other.Paths())
		}
		if _, statErr := os.Stat(filepath.Join(dir, "node_modules", "sitehost-test-elsewhere")); statErr == nil {
			t.Fatalf("sandboxed %v: the package is in the checkout", sandboxed)
		}
	}

	// Control: npm ci without sitehost fetches the tarball from the
	// other registry.
	control := checkout(t, site)
	home := t.TempDir()
	os.Symlink(node, filepath.Join(home, "node")) //nolint:errcheck // the run fails without it
	cmd := exec.Command(npmExe, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--registry="+reg.URL, "--cache="+filepath.Join(home, "cache"))
	cmd.Dir, cmd.Env = control, []string{"PATH=" + home + ":/usr/bin:/bin", "HOME=" + home}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("control npm ci: %v\n%s", err, out)
	}
	if other.Connections() == before {
		t.Fatal("control: plain npm ci did not reach the other registry either")
	}
}

// TestTLSInstallReachesTheRegistryOnly: with an https registry, a
// package resolved to another https host is refused at CONNECT: the error
// names it and it sees no connection.
func TestTLSInstallReachesTheRegistryOnly(t *testing.T) {
	node, npmExe := npmtest.Tools(t)
	reg, other := npmtest.NewTLSRegistry(t), npmtest.NewTLSRegistry(t)
	other.AddPackage(t, "sitehost-test-elsewhere", "1.0.0", map[string]any{}, map[string]string{"index.js": "module.exports = 1\n"})
	site := t.TempDir()
	npmtest.Site(t, site, other, npmExe, node, map[string]any{"dependencies": map[string]string{"sitehost-test-elsewhere": "1.0.0"}})
	o, _ := url.Parse(other.URL)
	before := other.Connections()
	in := npm.New(npm.Options{NPM: npmExe, Node: node, Registry: reg.URL, CacheDir: t.TempDir(), Timeout: 2 * time.Minute,
		Sandbox: support(t), ExtraCACerts: reg.CAFile})
	res, err := in.Install(context.Background(), "blog", checkout(t, site), false)
	t.Logf("%s: %v", res.Sandbox, err)
	if err == nil || !strings.Contains(err.Error(), "refused "+o.Host) {
		t.Fatalf("want an error naming the refused %s, got %v", o.Host, err)
	}
	if n := other.Connections() - before; n != 0 {
		t.Fatalf("the other registry got %d connections", n)
	}
}

// TestUntrustedInstallNeedsASandbox: a fork's install is refused where no
// sandbox contains it, unless the operator allows it.
func TestUntrustedInstallNeedsASandbox(t *testing.T) {
	node, npmExe := npmtest.Tools(t)
	reg := npmtest.NewRegistry(t)
	site := t.TempDir()
	npmtest.Site(t, site, reg, npmExe, node, map[string]any{"dependencies": map[string]string{"is-number": "7.0.0"}})
	for _, allow := range []bool{false, true} {
		dir := checkout(t, site)
		in := npm.New(npm.Options{NPM: npmExe, Node: node, Registry: reg.URL, CacheDir: t.TempDir(), Timeout: time.Minute, Unsandboxed: allow})
		_, err := in.Install(context.Background(), "site", dir, true)
		switch {
		case !allow && (err == nil || !strings.Contains(err.Error(), "untrusted install refused") || fault.KindOf(err) != fault.KindStalled):
			t.Errorf("no sandbox, not allowed: %v, want refused", err)
		case allow && err != nil:
			t.Errorf("no sandbox, allowed: %v", err)
		}
	}
}

// TestRegistryWithItsOwnCA: a registry (or a TLS proxy before it) whose
// certificate comes from a company CA works when the operator names that
// CA as node expects (NODE_EXTRA_CA_CERTS), inside the sandbox too, and
// fails without it.
func TestRegistryWithItsOwnCA(t *testing.T) {
	node, npmExe := npmtest.Tools(t)
	reg := npmtest.NewTLSRegistry(t)
	site := t.TempDir()
	npmtest.Site(t, site, reg, npmExe, node, map[string]any{"dependencies": map[string]string{"is-number": "7.0.0"}})
	for _, ca := range []string{"", reg.CAFile} {
		in := npm.New(npm.Options{NPM: npmExe, Node: node, Registry: reg.URL, CacheDir: t.TempDir(), Timeout: 2 * time.Minute,
			Sandbox: support(t), ExtraCACerts: ca})
		dir := checkout(t, site)
		_, err := in.Install(context.Background(), "site", dir, false)
		switch {
		case ca == "" && err == nil:
			t.Error("installed from a registry whose CA npm was not given")
		case ca != "" && err != nil:
			t.Errorf("with NODE_EXTRA_CA_CERTS: %v", err)
		case ca != "":
			if _, err := os.Stat(filepath.Join(dir, "node_modules", "is-number", "package.json")); err != nil {
				t.Errorf("is-number not installed: %v", err)
			}
		default:
			t.Logf("without the CA: %v", err)
		}
	}
}
