// Package forge reports commit statuses back to the forge that hosts a
// site's repository, so a pull request or commit shows whether sitehost is
// building it, published it (with a link to the preview or production URL),
// or failed.
//
// New returns a Client for one forge and one repository. GitHub, GitLab,
// Gitea, Forgejo and Bitbucket Cloud are supported, each through its
// documented REST endpoint for commit statuses (the source of every request
// shape is cited next to its code). Our three states, Pending, Success and
// Failure, are mapped onto each forge's vocabulary.
//
// A Reporter delivers statuses in the background with retries, so a slow
// or broken forge never holds up a deploy. Statuses for the same client,
// commit and context are delivered in order, and a newer one replaces an
// older one still waiting for a retry: a forge never sees "pending" after
// "success" for the same context.
//
// The API token is sent only in request headers. It never appears in
// errors, logs or the String form of a Client.
package forge
