package consumer

import (
	"strings"
	"testing"
)

func TestPprofAddrBindsLoopbackUnlessAHostIsNamed(t *testing.T) {
	for flag, want := range map[string]string{
		":6060":          "127.0.0.1:6060",
		"6060":           "127.0.0.1:6060",
		"0.0.0.0:6060":   "0.0.0.0:6060",
		"10.1.2.3:7000":  "10.1.2.3:7000",
		"[::1]:6060":     "[::1]:6060",
		"localhost:6060": "localhost:6060",
	} {
		if got, err := PprofAddr(flag); err != nil || got != want {
			t.Errorf("PprofAddr(%q) = %q, %v; want %q", flag, got, err, want)
		}
	}
	for _, bad := range []string{"a:b:c", "host:"} {
		if _, err := PprofAddr(bad); err == nil || !strings.Contains(err.Error(), "--pprof-addr") {
			t.Errorf("PprofAddr(%q) = %v, want an error naming --pprof-addr", bad, err)
		}
	}
}
