package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed assets
var assetFS embed.FS

// asset is one embedded file and the hash that versions its URL.
type asset struct {
	body []byte
	hash string
}

func loadAssets() map[string]asset {
	assets := make(map[string]asset)
	entries, err := fs.ReadDir(assetFS, "assets")
	if err != nil {
		panic("dashboard: reading embedded assets: " + err.Error())
	}
	for _, e := range entries {
		body, err := fs.ReadFile(assetFS, path.Join("assets", e.Name()))
		if err != nil {
			panic("dashboard: reading embedded asset: " + err.Error())
		}
		sum := sha256.Sum256(body)
		assets[e.Name()] = asset{body: body, hash: hex.EncodeToString(sum[:8])}
	}
	return assets
}

// assetURL is the URL pages use for an asset: the content hash in the
// query lets browsers cache it for good and still see every new version.
func (h *Handler) assetURL(name string) (string, error) {
	a, ok := h.assets[name]
	if !ok {
		return "", fmt.Errorf("linking asset %s: %w", name, fs.ErrNotExist)
	}
	return "/assets/" + name + "?v=" + a.hash, nil
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("file")]
	if !ok {
		h.handle(func(http.ResponseWriter, *http.Request) error {
			return notFound("There is no such file.")
		}).ServeHTTP(w, r)
		return
	}
	if r.URL.Query().Get("v") == a.hash {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	// ServeContent answers If-None-Match against the ETag, and Range.
	w.Header().Set("ETag", `"`+a.hash+`"`)
	http.ServeContent(w, r, r.PathValue("file"), time.Time{}, bytes.NewReader(a.body))
}
