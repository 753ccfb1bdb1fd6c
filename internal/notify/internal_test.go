package notify

import (
	"net/http"
	"testing"
	"time"
)

func TestMaskURL(t *testing.T) {
	tests := []struct {
		name   string
		url    string
		format Format
		want   string
	}{
		{"plain JSON keeps path", "https://ci.example.com/hooks/sitehost", JSON, "https://ci.example.com/hooks/sitehost"},
		{"root", "https://example.com/", JSON, "https://example.com/"},
		{"port", "http://127.0.0.1:8080/hook", JSON, "http://127.0.0.1:8080/hook"},
		{"userinfo", "https://bot:pa55@example.com/hook", JSON, "https://…@example.com/hook"},
		{"query", "https://example.com/hook?token=t0ken&x=1", JSON, "https://example.com/hook?…"},
		{"fragment dropped", "https://example.com/hook#t0ken", JSON, "https://example.com/hook"},
		{"slack host even as JSON", "https://hooks.slack.com/services/T0/B0/s3cret", JSON, "https://hooks.slack.com/…"},
		{"slack format on any host", "https://mm.example.com/hooks/s3cret", Slack, "https://mm.example.com/…"},
		{"discord", "https://discord.com/api/webhooks/1/s3cret", JSON, "https://discord.com/…"},
		{"teams subdomain", "https://acme.webhook.office.com/webhookb2/s3cret", JSON, "https://acme.webhook.office.com/…"},
		{"lookalike host keeps path", "https://nothooks.slack.com.example/p", JSON, "https://nothooks.slack.com.example/p"},
		{"everything", "https://u:p@hooks.slack.com/services/x?y=z", Slack, "https://…@hooks.slack.com/…?…"},
		{"unparseable", "https://example.com/%zz?token=t0ken", JSON, "(invalid URL)"},
		{"relative", "/hook", JSON, "(invalid URL)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maskURL(tt.url, tt.format); got != tt.want {
				t.Errorf("maskURL(%q) = %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"3", 3 * time.Second},
		{" 7 ", 7 * time.Second},
		{"-5", 0},
		{"3600", maxRetryAfter},
		{"99999999999999999", maxRetryAfter},
		{now.Add(20 * time.Second).Format(http.TimeFormat), 20 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Add(time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{"soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			if got := parseRetryAfter(tt.header, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

// Waits double per attempt around the nominal value, within the jitter,
// and never exceed the cap.
func TestRetryWait(t *testing.T) {
	tests := []struct {
		base    time.Duration
		attempt int
		nominal time.Duration
	}{
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 4, 8 * time.Second},
		{time.Second, 30, maxBackoff},
		{time.Second, 1000, maxBackoff},
		{time.Hour, 1, maxBackoff},
	}
	for _, tt := range tests {
		for range 100 {
			got := retryWait(tt.base, tt.attempt)
			if got < tt.nominal/2 || got > min(tt.nominal*3/2, maxBackoff) {
				t.Fatalf("retryWait(%v, %d) = %v, want within [%v, %v]", tt.base, tt.attempt, got, tt.nominal/2, min(tt.nominal*3/2, maxBackoff))
			}
		}
	}
}
