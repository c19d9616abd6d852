package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
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
		if got, err := pprofAddr(flag); err != nil || got != want {
			t.Errorf("pprofAddr(%q) = %q, %v; want %q", flag, got, err, want)
		}
	}
	for _, bad := range []string{"a:b:c", "host:"} {
		if _, err := pprofAddr(bad); err == nil || !strings.Contains(err.Error(), "--pprof-addr") {
			t.Errorf("pprofAddr(%q) = %v, want an error naming --pprof-addr", bad, err)
		}
	}
}

func TestServePprofServesProfilesUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := servePprof(ctx, "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("GET goroutine profile: %d %.80q", res.StatusCode, body)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get("http://" + addr + "/debug/pprof/"); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the profiling endpoint still answers 5s after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
