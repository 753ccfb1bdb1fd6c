package sandbox

import (
	"errors"
	"testing"
)

// TestAdmitNothingDetected: a Linux kernel that offers none of our
// mechanisms (no Landlock, no namespaces, no cgroups) gets the same
// answer as darwin: untrusted work refused unless the operator opts out.
func TestAdmitNothingDetected(t *testing.T) {
	s := &Support{exe: "/usr/local/bin/sitehost", missing: []string{"landlock (ENOSYS)", "namespaces (EPERM)"}}
	sb, err := s.New("b1", Paths{ReadExec: SystemExec()}, Limits{Memory: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if err := Admit(sb, true, false); !errors.Is(err, ErrUncontained) {
		t.Fatalf("untrusted: %v, want ErrUncontained", err)
	}
	if err := Admit(sb, true, true); err != nil {
		t.Fatalf("untrusted with allow_unsandboxed: %v", err)
	}
	if err := Admit(sb, false, false); err != nil {
		t.Fatalf("trusted: %v", err)
	}
}
