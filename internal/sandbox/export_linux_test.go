package sandbox

// WithoutNamespaces is s as a system without user and network
// namespaces would have it: the host-network fallback of Paths.Egress.
func WithoutNamespaces(s *Support) *Support {
	c := *s
	c.nsFlags, c.userNS = 0, false
	return &c
}

// WithoutLandlock is s as a kernel without Landlock would have it.
func WithoutLandlock(s *Support) *Support {
	c := *s
	c.landlock = 0
	return &c
}
