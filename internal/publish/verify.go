package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
)

// Verify checks the deploy channel c of site s points at against the store:
// its manifest must be readable, and a sample of its blobs — the home
// page, 404.html and n files at random, with their variants — present with
// the size and hash the manifest gives. It returns the pointer and what is
// wrong (empty: intact). An error means the store could not be asked, which
// is an outage, not drift; ErrNotFound means the channel does not exist.
func (p *Publisher) Verify(ctx context.Context, s site.Name, c site.Channel, n int) (manifest.Pointer, []string, error) {
	ptr, err := p.Pointer(ctx, s, c)
	if err != nil {
		return manifest.Pointer{}, nil, err
	}
	m, err := p.Manifest(ctx, s, ptr.Deploy)
	if errors.Is(err, ErrNotFound) {
		return ptr, []string{fmt.Sprintf("manifest of deploy %s is missing", ptr.Deploy)}, nil
	}
	if errors.Is(err, manifest.ErrCorrupt) {
		return ptr, []string{fmt.Sprintf("manifest of deploy %s is corrupt: %v", ptr.Deploy, err)}, nil
	}
	if err != nil {
		return ptr, nil, err
	}
	var problems []string
	for _, name := range sample(m, n) {
		f := m.Files[name]
		check := func(what string, v manifest.Variant) error {
			problem, err := p.checkBlob(ctx, v)
			if problem != "" {
				problems = append(problems, fmt.Sprintf("%s%s: %s", name, what, problem))
			}
			return err
		}
		if err := check("", manifest.Variant{SHA256: f.SHA256, Size: f.Size}); err != nil {
			return ptr, nil, err
		}
		for _, v := range []struct {
			what string
			v    *manifest.Variant
		}{{" (gzip)", f.Gzip}, {" (br)", f.Brotli}} {
			if v.v != nil {
				if err := check(v.what, *v.v); err != nil {
					return ptr, nil, err
				}
			}
		}
	}
	return ptr, problems, nil
}

// sample picks the files to check: the ones every visitor sees first, then
// n at random.
func sample(m *manifest.Manifest, n int) []string {
	var out []string
	for _, name := range []string{"index.html", "404.html"} {
		if _, ok := m.Files[name]; ok {
			out = append(out, name)
		}
	}
	names := make([]string, 0, len(m.Files))
	for name := range m.Files {
		if !slices.Contains(out, name) {
			names = append(names, name)
		}
	}
	for i := 0; i < n && len(names) > 0; i++ {
		j := rand.IntN(len(names))
		out = append(out, names[j])
		names[j] = names[len(names)-1]
		names = names[:len(names)-1]
	}
	return out
}

// checkBlob reads a blob whole and says what is wrong with it, if anything.
func (p *Publisher) checkBlob(ctx context.Context, v manifest.Variant) (string, error) {
	obj, _, err := p.st.Get(ctx, manifest.BlobKey(v.SHA256))
	if errors.Is(err, store.ErrNotFound) {
		return "blob " + v.SHA256[:12] + " is missing", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading blob %s: %w", v.SHA256[:12], err)
	}
	defer obj.Close()
	h := sha256.New()
	size, err := io.Copy(h, obj)
	if err != nil {
		return "", fmt.Errorf("reading blob %s: %w", v.SHA256[:12], err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != v.SHA256 || size != v.Size {
		return fmt.Sprintf("blob %s is corrupt (%d bytes hashing to %s)", v.SHA256[:12], size, sum[:12]), nil
	}
	return "", nil
}
