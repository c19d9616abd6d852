package consumer

import (
	"fmt"
	"net"
)

// PprofAddr is the address a --pprof-addr value binds, for the consumer and the manager: a
// value without a host (":6060", "6060") binds loopback only, so Go profiles are served to
// the network only where the address names a host ("0.0.0.0:6060").
func PprofAddr(flag string) (string, error) {
	addr := flag
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("--pprof-addr: %q is not host:port or a port", flag)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}
