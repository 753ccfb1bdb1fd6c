package publish

import (
	"mime"
	"net/http"
	"os"
	"path"
	"strings"
)

// webTypes fixes the content types that matter most, so they do not depend
// on the host's /etc/mime.types.
var webTypes = map[string]string{
	".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
	".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
	".mjs": "text/javascript; charset=utf-8", ".json": "application/json",
	".xml": "application/xml", ".rss": "application/rss+xml", ".atom": "application/atom+xml",
	".txt": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8",
	".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
	".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif", ".ico": "image/x-icon",
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
	".pdf": "application/pdf", ".wasm": "application/wasm", ".map": "application/json",
	".webmanifest": "application/manifest+json", ".mp4": "video/mp4", ".webm": "video/webm",
	".mp3": "audio/mpeg", ".zip": "application/zip", ".gz": "application/gzip",
}

// contentType decides a file's type at publish time, so serving never sniffs.
func contentType(rel, abs string) string {
	ext := strings.ToLower(path.Ext(rel))
	if t, ok := webTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	f, err := os.Open(abs)
	if err != nil {
		return "application/octet-stream"
	}
	defer f.Close()
	var buf [512]byte
	n, _ := f.Read(buf[:])
	return http.DetectContentType(buf[:n])
}
