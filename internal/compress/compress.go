// Package compress decides which published files get precompressed
// variants, produces them, and picks the variant to serve for a request.
//
// Compression happens once, at publish time, so the serving path only has to
// negotiate (Negotiate, allocation-free) and stream bytes that already exist.
// Because the cost is paid once per deploy rather than once per request, the
// levels are high: gzip 9 and brotli 11, with brotli stepping down for large
// files so that a big site still publishes in seconds (see brotliQuality).
package compress

import (
	"strings"
)

// Encoding is a content coding the server precompresses. Its value is the
// token used in Content-Encoding.
type Encoding string

// The codings the server knows. Identity is the unencoded file.
const (
	Identity Encoding = ""
	Gzip     Encoding = "gzip"
	Brotli   Encoding = "br"
)

// String returns the Content-Encoding token, or "identity" for Identity so
// logs and errors never show an empty name.
func (e Encoding) String() string {
	if e == Identity {
		return "identity"
	}
	return string(e)
}

// MinSize is the smallest file that gets variants. Below 1 KiB the whole
// response, headers included, already fits in one TCP segment (MSS ≈ 1460
// bytes on Ethernet), so compressing it saves no round trip and no packet,
// only a few hundred bytes; meanwhile each variant costs a blob, a manifest
// entry and a Vary-dependent cache entry. Gzip's 18-byte framing and brotli's
// per-stream overhead also eat a larger share of a small file.
const MinSize = 1024

// KeepRatio is the largest compressed/original size ratio for which a variant
// is kept. A variant that saves less than 10% is not worth its storage, its
// cache entry, or the client's decompression time; this mostly drops files
// whose type says "text" but whose content is already dense (inline base64,
// minified JSON of hashes, PNG-carrying ICOs).
const KeepRatio = 0.9

// Worth reports whether a file of this content type and size gets
// precompressed variants. It says yes only for types known to be
// compressible text or uncompressed binary (fonts, wasm, icons) and at least
// MinSize bytes; formats that are compressed internally (PNG, JPEG, WebP,
// AVIF, WOFF/WOFF2, video, audio, ZIP, gzip, PDF) and unknown types say no,
// since recompressing them costs CPU for nothing. Media-type parameters such
// as "; charset=utf-8" are ignored, and matching is case-insensitive. A
// negative (unknown) size is treated as too small: publish always knows sizes.
func Worth(contentType string, size int64) bool {
	if size < MinSize {
		return false
	}
	mt, _, _ := strings.Cut(contentType, ";")
	// ToLower returns its argument unchanged (no allocation) when the type is
	// already lower case, which is what publish produces.
	mt = strings.ToLower(strings.TrimSpace(mt))
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" {
		return false
	}
	if typ == "text" {
		return true
	}
	// Structured-syntax suffixes (RFC 6839) name the underlying text format:
	// application/rss+xml, application/ld+json, image/svg+xml,
	// application/manifest+json, model/gltf+json, ...
	if strings.HasSuffix(sub, "+xml") || strings.HasSuffix(sub, "+json") ||
		strings.HasSuffix(sub, "+yaml") {
		return true
	}
	switch mt {
	case "application/javascript", "application/x-javascript", "application/ecmascript",
		"application/json", "application/x-ndjson", "application/xml",
		"application/yaml", "application/x-yaml", "application/toml",
		"application/wasm",
		// TrueType/OpenType/EOT are uncompressed; WOFF and WOFF2 are not
		// listed because they are zlib/brotli inside.
		"font/ttf", "font/otf", "font/sfnt", "font/collection",
		"application/x-font-ttf", "application/x-font-otf", "application/font-sfnt",
		"application/vnd.ms-fontobject",
		// ICO and BMP hold raw bitmaps; an ICO wrapping PNG will simply fail
		// KeepRatio.
		"image/x-icon", "image/vnd.microsoft.icon", "image/bmp":
		return true
	}
	return false
}
