package compress

import "testing"

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name       string
		header     string
		haveBrotli bool
		haveGzip   bool
		want       Encoding
	}{
		// Real clients.
		{"chrome", "gzip, deflate, br, zstd", true, true, Brotli},
		{"firefox", "gzip, deflate, br, zstd", true, true, Brotli},
		{"safari", "gzip, deflate, br", true, true, Brotli},
		{"curl default sends none", "", true, true, Identity},
		{"curl --compressed", "deflate, gzip, br, zstd", true, true, Brotli},
		{"old curl --compressed", "deflate, gzip", true, true, Gzip},
		{"go http client", "gzip", true, true, Gzip},
		{"weighted", "br;q=1.0, gzip;q=0.8, *;q=0.1", true, true, Brotli},

		// Available variants.
		{"only gzip variant", "gzip, deflate, br", false, true, Gzip},
		{"only brotli variant", "gzip, deflate, br", true, false, Brotli},
		{"no variants", "gzip, deflate, br", false, false, Identity},
		{"client lacks our codings", "deflate, zstd", true, true, Identity},
		{"x-gzip alias", "x-gzip", true, true, Gzip},

		// q-values.
		{"gzip refused", "gzip;q=0, br", true, true, Brotli},
		{"br refused", "br;q=0, gzip", true, true, Gzip},
		{"both refused", "br;q=0, gzip;q=0", true, true, Identity},
		{"higher q beats server preference", "br;q=0.5, gzip;q=0.8", true, true, Gzip},
		{"equal q uses server preference", "gzip;q=0.7, br;q=0.7", true, true, Brotli},
		{"three decimals", "br;q=0.501, gzip;q=0.5", true, true, Brotli},
		{"q=1.000", "gzip;q=1.000", true, true, Gzip},
		{"q=0.000", "gzip;q=0.000, identity", true, true, Identity},
		{"q=0. is zero", "gzip;q=0.", true, true, Identity},
		{"lowest positive q still accepts", "gzip;q=0.001", true, true, Gzip},
		{"identity preferred by q", "gzip;q=0.5, identity;q=1", true, true, Identity},
		{"identity tie loses to coding", "gzip;q=0.5, identity;q=0.5", true, true, Gzip},
		{"other params ignored", "gzip;level=9;q=0.5, br;q=0.2", true, true, Gzip},
		{"listed twice keeps lowest", "gzip, gzip;q=0", true, true, Identity},

		// Wildcard.
		{"star covers br", "gzip;q=0.5, *", true, true, Brotli},
		{"star covers unlisted only", "br;q=0, *", true, true, Gzip},
		{"star alone", "*", true, true, Brotli},
		{"star refuses unlisted", "gzip, *;q=0", true, true, Gzip},
		{"star q=0 and nothing listed", "*;q=0", true, true, Identity},
		{"star lowers identity", "gzip;q=0.2, *;q=0.1", false, true, Gzip},

		// Identity refused: still identity when nothing else fits (no 406).
		{"identity refused, no variants", "identity;q=0", false, false, Identity},
		{"identity refused, gzip not accepted", "identity;q=0, deflate", true, true, Identity},
		{"identity refused, gzip accepted", "identity;q=0, gzip", true, true, Gzip},
		{"all refused", "*;q=0, identity;q=0", true, true, Identity},

		// Case and whitespace.
		{"upper case", "GZIP, BR", true, true, Brotli},
		{"mixed case q", "Br;Q=0.1, Gzip;Q=0.9", true, true, Gzip},
		{"spaces", "  gzip ;  q=0.5 ,   br ; q = 0.9  ", true, true, Brotli},
		{"tabs", "gzip\t,\tbr", true, true, Brotli},
		{"no spaces", "gzip,deflate,br", true, true, Brotli},

		// Junk.
		{"malformed q refuses that coding", "br;q=abc, gzip", true, true, Gzip},
		{"q above 1 is malformed", "br;q=2, gzip", true, true, Gzip},
		{"q 1.5 is malformed", "br;q=1.5, gzip", true, true, Gzip},
		{"negative q is malformed", "br;q=-1, gzip", true, true, Gzip},
		{"empty q is malformed", "br;q=, gzip", true, true, Gzip},
		{"quoted q is malformed", `br;q="1", gzip`, true, true, Gzip},
		{"leading dot is malformed", "br;q=.5, gzip", true, true, Gzip},
		{"more than three decimals truncated", "br;q=0.00001, gzip;q=0.0001", true, true, Identity},
		{"malformed q with star", "br;q=x, *", true, true, Gzip},
		{"empty elements", ",, ,gzip,,", true, true, Gzip},
		{"only commas", ",,,", true, true, Identity},
		{"only whitespace", "   ", true, true, Identity},
		{"semicolons only", ";;;", true, true, Identity},
		{"prefix is not a match", "brotli, gzipped", true, true, Identity},
		{"trailing semicolon", "br;, gzip;q=0.5;", true, true, Brotli},
		{"non-ascii junk", "gzip;q=0.5, ñ, br;q=ß", true, true, Gzip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Negotiate(tt.header, tt.haveBrotli, tt.haveGzip)
			if got != tt.want {
				t.Errorf("Negotiate(%q, br=%v, gzip=%v) = %v, want %v",
					tt.header, tt.haveBrotli, tt.haveGzip, got, tt.want)
			}
		})
	}
}

func TestNegotiateDoesNotAllocate(t *testing.T) {
	for _, h := range negotiateHeaders {
		allocs := testing.AllocsPerRun(100, func() {
			sink = Negotiate(h.header, true, true)
		})
		if allocs != 0 {
			t.Errorf("Negotiate(%q) allocates %v times per call, want 0", h.header, allocs)
		}
	}
}

func TestParseQ(t *testing.T) {
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"0", 0, true},
		{"1", 1000, true},
		{"1.", 1000, true},
		{"1.0", 1000, true},
		{"1.000", 1000, true},
		{"0.5", 500, true},
		{"0.25", 250, true},
		{"0.125", 125, true},
		{"0.1259", 125, true},
		{"1.001", 0, false},
		{"2", 0, false},
		{"", 0, false},
		{".5", 0, false},
		{"0,5", 0, false},
		{"0.5x", 0, false},
		{"01", 0, false},
		{"-0", 0, false},
		{"+1", 0, false},
		{"1e0", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseQ(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseQ(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
