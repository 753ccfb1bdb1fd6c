package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func socketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "egress-parent"), os.NewFile(uintptr(fds[1]), "egress-launcher"), nil
}

// receiveListener reads the one fd the launcher sends over sock: its
// listener.
func receiveListener(ctx context.Context, sock *os.File) (net.Listener, error) {
	c, err := net.FileConn(sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("not a unix socket: %T", c)
	}
	stop := context.AfterFunc(ctx, func() { uc.SetReadDeadline(time.Now()) }) //nolint:errcheck // only wakes the read
	defer stop()
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, errors.Join(err, ctx.Err())
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("no listener in the message (%w)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("no listener in the message (%w)", err)
	}
	f := os.NewFile(uintptr(fds[0]), "egress-listener")
	defer f.Close()
	return net.FileListener(f)
}

// egress makes, in the launcher's own network namespace, the program's
// one way out: loopback up and a TCP listener on 127.0.0.1:p.Egress,
// sent to the parent over egressFD, which accepts on it; the launcher
// keeps no copy, so the program can only connect. A loopback already up
// means a network that is not the launcher's own (started without the
// sandbox's namespaces): it refuses rather than listen on the host's.
func (p policy) egress() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("egress: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("egress: %w", err)
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("egress: reading lo's flags: %w", err)
	}
	flags := ifr.Uint16()
	if flags&unix.IFF_UP != 0 {
		return errors.New("egress: loopback is up already: not a network namespace of the sandbox's own")
	}
	ifr.SetUint16(flags | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("egress: bringing lo up: %w", err)
	}
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("egress: %w", err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Port: int(p.Egress), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("egress: binding 127.0.0.1:%d: %w", p.Egress, err)
	}
	if err := unix.Listen(ln, 128); err != nil {
		return fmt.Errorf("egress: %w", err)
	}
	if err := unix.Sendmsg(egressFD, []byte{0}, unix.UnixRights(ln), nil, 0); err != nil {
		return fmt.Errorf("egress: sending the listener to the parent: %w", err)
	}
	return unix.Close(egressFD)
}
