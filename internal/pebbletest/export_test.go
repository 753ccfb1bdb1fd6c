package pebbletest

// DNSAddr is challtestsrv's DNS address ("127.0.0.1:PORT", UDP and TCP).
func (s *Server) DNSAddr() string { return s.dnsAddr }

// ManagementURL is Pebble's management API ("https://127.0.0.1:PORT").
func (s *Server) ManagementURL() string { return s.mgmtURL }
