// Package lease shares sites among builders that use one bucket (DESIGN
// §12, issue 19): each site is owned by one builder at a time, through
// objects written with the store's conditional Put; no other coordination.
//
// Layout:
//
//	leases/builders/<id>.json  heartbeat {holder, expires}, rewritten every Interval
//	leases/sites/<site>.json   site lease {holder, generation, since}
//	leases/fleet.json          the fleet lease (GC, other once-per-fleet jobs)
//
// A site lease is valid while its holder's heartbeat is: its expiry is the
// heartbeat's. So renewing every lease a builder holds costs one write per
// Interval, whatever the number of sites; a lease written per site and
// renewed every few seconds would cost 10,000 sites × 12 writes a minute.
// A site lease is written only when it changes hands: taken (generation
// + 1, If-Match on the version read, or If-None-Match for a first one) or
// handed back (holder "", If-Match). A lease is free when its holder is
// "", when its holder has no heartbeat, or when the heartbeat expired: its
// expiry passed and it has not changed for 2 Intervals as this builder saw
// it, or it has not changed for LeaseTime whatever its clock says (a
// writer's clock far ahead).
//
// The holder considers a lease its own until LeaseTime minus a margin
// after it began the heartbeat write that last succeeded, measured on its
// own clock, and checks that at every Owns: a builder paused past that
// (SIGSTOP) and resumed owns nothing, and on its next tick drops every
// lease and takes them again only through conditional writes, with new
// generations. Timing alone cannot stop a paused process that checked
// Owns just before the pause; the generation does: the new owner stamps
// the site's channel pointers with its generation (publish.Stamp) before
// it publishes, and a pointer write is conditional on the version read
// and refused when the pointer carries a newer generation.
//
// What the generation cannot fence, with the store's Put and Delete as
// they are: the first pointer of a new channel (created If-None-Match, so
// there is nothing to stamp; a paused old owner that checked Owns before
// its pause can still create it, and the new owner's sync then finds it);
// a channel delete (no conditional Delete; Owns alone guards it); and a
// write landing between the new owner's take and its stamp, which the new
// owner's sync reads as the live state.
//
// Spread: each builder aims at ceil(sites / live builders). Below that it
// takes free leases, preferring sites by rendezvous hash so builders do not
// race for the same ones, 16 at a time and for at most half an Interval
// per tick, so a tick never outlives the lease it renews. Above it, or
// above floor(sites / live) while another builder is below that floor, it
// hands back one idle site per tick (an eighth of its target on a large
// fleet), so a new builder takes sites over gradually and no build is
// thrown away.
//
// The fleet lease goes to whichever builder finds it free; its holder runs
// garbage collection and deletes heartbeats dead for 20 lease times (each
// process start leaves one).
package lease
