package consumer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafkasub/kafkasub/consumer"
)

// secretVolume lays out files the way the kubelet's atomic writer does for a mounted
// Secret: the data in a timestamped directory, ..data a symlink to it, and every top-level
// entry a symlink through ..data. update swaps in a new data directory in one rename.
type secretVolume struct {
	t    *testing.T
	root string
	gen  int
}

func newSecretVolume(t *testing.T, files map[string]string) *secretVolume {
	v := &secretVolume{t: t, root: t.TempDir()}
	v.update(files)
	for name := range files {
		top := strings.SplitN(name, "/", 2)[0]
		if err := os.Symlink(filepath.Join("..data", top), filepath.Join(v.root, top)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	return v
}

func (v *secretVolume) update(files map[string]string) {
	v.t.Helper()
	v.gen++
	data := filepath.Join(v.root, "..gen"+string(rune('0'+v.gen)))
	for name, content := range files {
		p := filepath.Join(data, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			v.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o400); err != nil {
			v.t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.root, "..data_tmp")
	if err := os.Symlink(filepath.Base(data), tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.root, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if v.gen > 1 {
		if err := os.RemoveAll(filepath.Join(v.root, "..gen"+string(rune('0'+v.gen-1)))); err != nil {
			v.t.Fatal(err)
		}
	}
}

type watchResult struct {
	file string
	err  error
}

func watchSecretFiles(ctx context.Context, files []string) <-chan watchResult {
	done := make(chan watchResult, 1)
	go func() {
		f, err := consumer.WatchSecretFiles(ctx, files, time.Hour) // events only: no poll in time
		done <- watchResult{f, err}
	}()
	return done
}

func TestWatchSecretFiles(t *testing.T) {
	cases := []struct {
		name    string
		update  map[string]string
		changed string // "" when the watch must not fire
	}{
		{"A rotated DSN is noticed", map[string]string{"database-dsn": "postgres://new", "tls/ca.crt": "CA"}, "database-dsn"},
		{"A rotated CA in a subdirectory is noticed", map[string]string{"database-dsn": "postgres://old", "tls/ca.crt": "CA2"}, "tls/ca.crt"},
		{"The same content written again is not a change", map[string]string{"database-dsn": "postgres://old", "tls/ca.crt": "CA"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newSecretVolume(t, map[string]string{"database-dsn": "postgres://old", "tls/ca.crt": "CA"})
			files := []string{filepath.Join(v.root, "database-dsn"), filepath.Join(v.root, "tls", "ca.crt")}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := watchSecretFiles(ctx, files)
			time.Sleep(100 * time.Millisecond) // let the watch take its first digests
			v.update(tc.update)

			if tc.changed == "" {
				select {
				case r := <-done:
					t.Fatalf("the watch fired for unchanged content: %+v", r)
				case <-time.After(500 * time.Millisecond):
				}
				cancel()
				if r := <-done; r.file != "" || r.err != nil {
					t.Fatalf("after cancel: %+v, want nothing", r)
				}
				return
			}
			select {
			case r := <-done:
				if r.err != nil {
					t.Fatal(r.err)
				}
				if want := filepath.Join(v.root, tc.changed); r.file != want {
					t.Fatalf("changed file %q, want %q", r.file, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the change was not noticed within 10s")
			}
		})
	}
}

func TestWatchSecretFilesPollsWithoutEvents(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "later", "sasl-password")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan string, 1)
	go func() {
		got, _ := consumer.WatchSecretFiles(ctx, []string{f}, 50*time.Millisecond)
		done <- got
	}()
	time.Sleep(100 * time.Millisecond)
	// The directory did not exist when the watch began: only the poll can see the file appear.
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte("s3cret"), 0o400); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != f {
		t.Fatalf("got %q, want %q", got, f)
	}
}

func TestLoadReadsSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o400); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dsn := write("database-dsn", "postgres://u:p@db/shop\n")
	user := write("sasl-username", "shop")
	pass := write("sasl-password", "pa55\r\n")
	cfg := &consumer.Config{
		Handler: "inventory.product-updates",
		Kafka: consumer.KafkaConfig{
			BootstrapServers: []string{"kafka:9092"}, Topic: "t", ConsumerGroup: "g",
			SASL: &consumer.SASLConfig{Mechanism: consumer.SASLSCRAMSHA512, UsernameFile: user, PasswordFile: pass},
		},
		DeadLetter: consumer.DeadLetterConfig{Topic: "t.dlq"},
		Database:   consumer.DatabaseConfig{Driver: consumer.DriverPostgres, DSNFile: dsn},
	}
	data, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := write("config.yaml", string(data))
	// The files win over the environment.
	got, err := consumer.Load(path, func(k string) string { return "from-env-" + k })
	if err != nil {
		t.Fatal(err)
	}
	if got.DatabaseDSN != "postgres://u:p@db/shop" || got.SASLUsername != "shop" || got.SASLPassword != "pa55" {
		t.Errorf("secrets %q %q %q, want the files' content without the trailing line break", got.DatabaseDSN, got.SASLUsername, got.SASLPassword)
	}
	if want := []string{dsn, user, pass}; len(got.SecretFiles()) != 3 || got.SecretFiles()[0] != want[0] {
		t.Errorf("SecretFiles() = %v, want %v", got.SecretFiles(), want)
	}

	if err := os.Remove(dsn); err != nil {
		t.Fatal(err)
	}
	_, err = consumer.Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), "database.dsnFile") {
		t.Fatalf("a missing DSN file: %v, want an error naming database.dsnFile", err)
	}
}
