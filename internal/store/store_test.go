package store_test

import (
	"testing"

	"github.com/sitehost/sitehost/internal/store"
)

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"a", true},
		{"blobs/ab/ab12cd", true},
		{"sites/blog/channels/production.json", true},
		{".hidden/.x", true},
		{"a/...", true},
		{"with space/ü 日本", true},
		{"", false},
		{"/abs", false},
		{"/", false},
		{"dir/", false},
		{"a//b", false},
		{".", false},
		{"..", false},
		{"./a", false},
		{"a/./b", false},
		{"a/../b", false},
		{"a/..", false},
		{`a\b`, false},
		{"a\x00b", false},
	} {
		if got := store.ValidKey(tc.key); got != tc.want {
			t.Errorf("ValidKey(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}
