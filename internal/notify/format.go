package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sitehost/sitehost/internal/site"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body>" when a
// target has a Secret.
const SignatureHeader = "X-Sitehost-Signature-256"

// payload is the json format's body. The field names are the contract in
// the package doc.
type payload struct {
	ID             string `json:"id"`
	Event          Kind   `json:"event"`
	Site           string `json:"site,omitempty"`
	Channel        string `json:"channel,omitempty"`
	Commit         string `json:"commit,omitempty"`
	Deploy         string `json:"deploy,omitempty"`
	URL            string `json:"url,omitempty"`
	Message        string `json:"message,omitempty"`
	Error          string `json:"error,omitempty"`
	PreviousDeploy string `json:"previous_deploy,omitempty"`
	Time           string `json:"time"`
}

// encode renders e in format f.
func encode(f Format, e Event) ([]byte, error) {
	switch f {
	case Slack:
		return marshal(slackBody(e))
	case JSON, "":
		return marshal(payload{
			ID:             e.ID,
			Event:          e.Kind,
			Site:           e.Site,
			Channel:        e.Channel,
			Commit:         e.Commit,
			Deploy:         e.Deploy,
			URL:            e.URL,
			Message:        e.Message,
			Error:          e.Error,
			PreviousDeploy: e.PreviousDeploy,
			Time:           e.Time.UTC().Format(time.RFC3339),
		})
	}
	return nil, fmt.Errorf("encoding %s event: unknown format %q", e.Kind, f)
}

// marshal encodes v without escaping <, > and &: the bodies stay readable
// and Slack's <url|label> links stay literal.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding notification: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// sign returns the SignatureHeader value for body.
func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header, an X-Sitehost-Signature-256 value
// ("sha256=<hex>"), is the HMAC-SHA256 of body under secret. It compares
// in constant time and is false for an empty secret, so a receiver cannot
// accept unsigned requests by accident.
func Verify(secret, body []byte, header string) bool {
	if len(secret) == 0 {
		return false
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// Slack's incoming-webhook body: a fallback text and one mrkdwn section.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type string    `json:"type"`
	Text slackText `json:"text"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Lengths that keep a section under Slack's 3,000-character limit.
const (
	maxSlackMessage = 150
	maxSlackError   = 1000
)

func slackBody(e Event) slackMessage {
	return slackMessage{
		Text: slackLine(e, false),
		Blocks: []slackBlock{{
			Type: "section",
			Text: slackText{Type: "mrkdwn", Text: slackLine(e, true)},
		}},
	}
}

// slackLine renders e as one line, with mrkdwn markup when md is set and
// without it for the notification fallback. Either way the text is parsed
// by Slack, so everything from the event is escaped.
func slackLine(e Event, md bool) string {
	bold := func(s string) string {
		if md {
			return "*" + s + "*"
		}
		return s
	}
	code := func(s string) string {
		if md {
			return "`" + s + "`"
		}
		return s
	}

	who := bold(slackEscape(e.Site))
	if e.Channel != "" {
		who += " " + slackEscape(e.Channel)
	}
	// rev is "`abc1234` Fix typo", or what there is of it.
	var rev string
	if e.Commit != "" {
		rev = code(slackEscape(site.Commit(e.Commit).Short()))
	}
	if subject := firstLine(e.Message); subject != "" && e.Kind != DeployFailed {
		rev = strings.TrimSpace(rev + " " + slackEscape(truncate(subject, maxSlackMessage)))
	}
	link := ""
	if e.URL != "" {
		u := slackEscape(strings.ReplaceAll(e.URL, "|", "%7C"))
		link = u
		if md {
			link = "<" + u + "|" + u + ">"
		}
	}
	then := func(sep, s string) string {
		if s == "" {
			return ""
		}
		return sep + s
	}

	switch e.Kind {
	case DeployStarted:
		return ":hourglass_flowing_sand: " + who + " is deploying" + then(" ", rev)
	case DeploySucceeded:
		return ":white_check_mark: " + who + " is live" + then(": ", link) + then(" — ", rev)
	case DeployFailed:
		msg := e.Error
		if msg == "" {
			msg = e.Message
		}
		s := ":x: " + who + " failed"
		if e.Commit != "" {
			s += " at " + code(slackEscape(site.Commit(e.Commit).Short()))
		}
		return s + then(": ", slackEscape(truncate(strings.TrimSpace(msg), maxSlackError)))
	case PreviewReady:
		return ":eyes: " + who + " preview is ready" + then(": ", link) + then(" — ", rev)
	case PreviewRemoved:
		return ":wastebasket: " + who + " preview removed"
	case RolledBack:
		return ":rewind: " + who + " rolled back" + then(" to ", rev) + then(": ", link)
	}
	return ":information_source: " + who + ": " + slackEscape(string(e.Kind)) + then(" ", rev) + then(": ", link)
}

// slackEscape escapes the three characters Slack's text parser treats as
// control characters.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
