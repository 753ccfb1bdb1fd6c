package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
)

// egress is a sandbox's way out (Paths.Egress): the parent's listener on
// the host, or the socket pair the launcher sends its own over.
type egress struct {
	ln            net.Listener // on the host's 127.0.0.1 (no network namespace)
	addr          string       // where the program connects
	parent, child *os.File     // the pair; child is the launcher's egressFD
}

// setup makes the listener on the host, or, with a network namespace of
// the program's own (own), the socket pair. It returns the port the
// program connects to.
func (e *egress) setup(own bool) (uint16, error) {
	if own {
		var err error
		if e.parent, e.child, err = socketPair(); err != nil {
			return 0, fmt.Errorf("sandbox: making the egress socket: %w", err)
		}
		e.addr = fmt.Sprintf("127.0.0.1:%d", EgressPort)
		return EgressPort, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("sandbox: making the egress listener: %w", err)
	}
	e.ln, e.addr = ln, ln.Addr().String()
	return uint16(ln.Addr().(*net.TCPAddr).Port), nil
}

func (e *egress) close() {
	for _, f := range []*os.File{e.parent, e.child} {
		if f != nil {
			f.Close()
		}
	}
	e.parent, e.child = nil, nil
	if e.ln != nil {
		e.ln.Close()
	}
}

// EgressAddr is where the program reaches the egress listener (host:port
// on 127.0.0.1); "" without Paths.Egress.
func (sb *Sandbox) EgressAddr() string { return sb.egress.addr }

// Files are what the launcher inherits: exec.Cmd.ExtraFiles must start
// with them.
func (sb *Sandbox) Files() []*os.File {
	if sb.egress.child == nil {
		return nil
	}
	return []*os.File{sb.egress.child}
}

// Egress returns the listener the program's connections arrive on, to
// serve after the program started; closing it (or the sandbox) ends the
// program's way out. With a network namespace it is the launcher's, made
// in there and received from it: an error means the launcher failed
// before (its output says why).
func (sb *Sandbox) Egress(ctx context.Context) (net.Listener, error) {
	e := &sb.egress
	if e.ln != nil {
		return e.ln, nil
	}
	if e.parent == nil {
		return nil, errors.New("sandbox: no egress (Paths.Egress), or already taken")
	}
	// The launcher has its copy: without ours, its exit is an EOF.
	e.child.Close()
	e.child = nil
	ln, err := receiveListener(ctx, e.parent)
	e.parent.Close()
	e.parent = nil
	if err != nil {
		return nil, fmt.Errorf("sandbox: receiving the egress listener from the launcher: %w", err)
	}
	e.ln = ln
	return ln, nil
}
