package dbfault_test

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/kafkasub/kafkasub/consumer/dbfault"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(conn net.Conn) (string, error) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(conn).ReadString('\n')
}

func TestProxyCutsAndRestores(t *testing.T) {
	p, err := dbfault.NewProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if got, err := roundTrip(open); err != nil || got != "ping\n" {
		t.Fatalf("through the proxy: %q %v", got, err)
	}

	p.Cut()
	if _, err := roundTrip(open); err == nil {
		t.Fatal("an open connection still worked after Cut")
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		if _, err := roundTrip(c); err == nil {
			t.Fatal("a new connection worked while cut")
		}
		c.Close()
	}

	p.Restore()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c); err != nil || got != "ping\n" {
		t.Fatalf("after Restore: %q %v", got, err)
	}
}
