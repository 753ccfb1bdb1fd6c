package compress

import "testing"

func TestWorth(t *testing.T) {
	const big = 50 << 10
	tests := []struct {
		name        string
		contentType string
		size        int64
		want        bool
	}{
		// Text and text-like types.
		{"html with charset", "text/html; charset=utf-8", big, true},
		{"css", "text/css; charset=utf-8", big, true},
		{"text javascript", "text/javascript; charset=utf-8", big, true},
		{"plain", "text/plain", big, true},
		{"markdown", "text/markdown; charset=utf-8", big, true},
		{"csv", "text/csv", big, true},
		{"application javascript", "application/javascript", big, true},
		{"x-javascript", "application/x-javascript", big, true},
		{"json", "application/json", big, true},
		{"json with charset", "application/json; charset=utf-8", big, true},
		{"xml", "application/xml", big, true},
		{"rss", "application/rss+xml", big, true},
		{"atom", "application/atom+xml", big, true},
		{"xhtml", "application/xhtml+xml", big, true},
		{"ld json", "application/ld+json", big, true},
		{"geo json", "application/geo+json", big, true},
		{"web manifest", "application/manifest+json", big, true},
		{"svg", "image/svg+xml", big, true},
		{"yaml", "application/yaml", big, true},
		{"toml", "application/toml", big, true},
		// Uncompressed binaries.
		{"wasm", "application/wasm", big, true},
		{"ttf", "font/ttf", big, true},
		{"otf", "font/otf", big, true},
		{"legacy ttf", "application/x-font-ttf", big, true},
		{"eot", "application/vnd.ms-fontobject", big, true},
		{"ico", "image/x-icon", big, true},
		{"ico iana", "image/vnd.microsoft.icon", big, true},
		{"bmp", "image/bmp", big, true},
		// Normalisation.
		{"upper case", "TEXT/HTML; Charset=UTF-8", big, true},
		{"mixed case suffix", "Application/RSS+XML", big, true},
		{"spaces", "  text/css  ;charset=utf-8", big, true},
		{"spaces around slash are invalid", "text / css", big, false},
		// Already compressed.
		{"png", "image/png", big, false},
		{"jpeg", "image/jpeg", big, false},
		{"gif", "image/gif", big, false},
		{"webp", "image/webp", big, false},
		{"avif", "image/avif", big, false},
		{"woff", "font/woff", big, false},
		{"woff2", "font/woff2", big, false},
		{"mp4", "video/mp4", big, false},
		{"webm", "video/webm", big, false},
		{"mp3", "audio/mpeg", big, false},
		{"zip", "application/zip", big, false},
		{"gzip", "application/gzip", big, false},
		{"x-gzip", "application/x-gzip", big, false},
		{"pdf", "application/pdf", big, false},
		{"epub", "application/epub+zip", big, false},
		// Unknown or broken types.
		{"octet-stream", "application/octet-stream", big, false},
		{"empty type", "", big, false},
		{"no subtype", "text", big, false},
		{"no subtype slash", "text/", big, false},
		{"junk", ";;;", big, false},
		// Size threshold.
		{"one byte under MinSize", "text/html", MinSize - 1, false},
		{"exactly MinSize", "text/html", MinSize, true},
		{"empty file", "text/html", 0, false},
		{"unknown size", "text/html", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Worth(tt.contentType, tt.size); got != tt.want {
				t.Errorf("Worth(%q, %d) = %v, want %v", tt.contentType, tt.size, got, tt.want)
			}
		})
	}
}

func TestEncodingString(t *testing.T) {
	tests := []struct {
		enc  Encoding
		want string
	}{
		{Identity, "identity"},
		{Gzip, "gzip"},
		{Brotli, "br"},
	}
	for _, tt := range tests {
		if got := tt.enc.String(); got != tt.want {
			t.Errorf("Encoding(%q).String() = %q, want %q", string(tt.enc), got, tt.want)
		}
	}
}
