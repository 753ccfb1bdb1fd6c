// Package notify sends outgoing notifications of deploy events (a deploy
// started, succeeded or failed, a preview is ready or was removed, a
// channel was rolled back) to the HTTP receivers an operator configured.
//
// # Delivery
//
// Notify never blocks the deploy pipeline: it copies the event into a
// bounded in-memory queue per target and returns. Each target has one
// delivery goroutine, so a target sees its events in the order Notify was
// called, and a slow or dead receiver delays only itself. When a queue is
// full the oldest queued event is dropped (counted in TargetStats.Dropped
// and logged), because the newest state of a channel matters more than
// its history.
//
// A delivery is one POST. It is retried, up to Options.Attempts attempts
// in all, after a network error or timeout and after 408, 429 and 5xx
// responses; waits grow exponentially from Options.Backoff (1s, 2s, 4s …)
// with ±50% jitter, and a Retry-After header (seconds or an HTTP date,
// capped at one minute) lengthens the wait. Any other response, including
// 3xx (redirects are not followed: a webhook URL that moved is a
// configuration error) and other 4xx, fails the delivery at once. Queues
// live in memory, so events still queued when the process exits are lost;
// notifications are best effort, never a record of truth.
//
// Close stops accepting events, delivers what is queued until its ctx
// ends, then aborts in-flight requests and drops the rest.
//
// # Wire format: json (the default)
//
// The body is one JSON object. Empty fields are omitted, except id, event
// and time, which are always present:
//
//	{
//	  "id": "9f86d081884c7d65",          // unique per event; dedupe on it
//	  "event": "deploy_succeeded",       // a Kind
//	  "site": "blog",
//	  "channel": "production",           // or "pr-7", "branch-staging"
//	  "commit": "<full SHA>",
//	  "deploy": "<deploy id>",
//	  "url": "https://blog.example.com/",
//	  "message": "Fix typo",             // commit subject, or the error
//	  "error": "hugo: …",                // deploy_failed only
//	  "previous_deploy": "<deploy id>",  // what was live before
//	  "time": "2025-03-14T15:09:26Z"     // RFC 3339, UTC, when it happened
//	}
//
// Headers:
//
//	Content-Type: application/json
//	User-Agent: sitehost (Options.UserAgent)
//	X-Sitehost-Event: <event>
//	X-Sitehost-Delivery: <id>
//	X-Sitehost-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>   (only with a Secret)
//
// The id is the same for every target and every retry of one event, so a
// receiver that sees an id twice has seen the event twice.
//
// # Signatures
//
// With a Target.Secret, X-Sitehost-Signature-256 carries the hex
// HMAC-SHA256 of the exact request body, prefixed "sha256=". This is
// GitHub's X-Hub-Signature-256 scheme, so existing verification code works
// unchanged; Verify implements it in constant time. Only the body is
// signed, and there is no separate timestamp header: the signed "time"
// field is the replay guard. It is when the event happened, not when it
// was sent, and a delivery can arrive minutes late after retries, so a
// receiver should accept a generous window (an hour, say) and dedupe on
// id within it.
//
// # Wire format: slack
//
// The body is a Slack incoming-webhook message: a plain "text" fallback
// (shown in notifications) and one "section" block with mrkdwn, e.g.
//
//	{"text": "…", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text":
//	  ":white_check_mark: *blog* production is live: <https://blog.example.com/|https://blog.example.com/> — `abc1234` Fix typo"}}]}
//
// Commit messages and errors are escaped (&, <, >) and shortened to fit.
// Mattermost and Rocket.Chat accept the same body. The X-Sitehost-*
// headers, and the signature when a Secret is set, are sent too: Slack
// ignores them, and a Slack-compatible receiver of one's own can check
// them.
//
// # Secrets in URLs
//
// Target URLs often embed credentials: userinfo, a token in the query, or,
// for Slack-style incoming webhooks, the whole path. Logs and Stats keys
// therefore show a masked URL: userinfo and query become "…", and the path
// becomes "…" for Slack-format targets and for known webhook hosts
// (hooks.slack.com, discord.com). JSON targets keep their path, so put a
// JSON receiver's secret in Target.Secret, the userinfo or the query,
// never in the path.
package notify
