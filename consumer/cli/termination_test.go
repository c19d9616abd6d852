package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// writeConsumerConfig writes a valid consumer configuration for handler and returns its
// path; the database DSN is in the environment, as in a pod.
func writeConsumerConfig(t *testing.T, handler string) string {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "db.sqlite3")
	cfg := consumertest.Config([]string{"127.0.0.1:1"}, "t", "t.dlq", consumer.DriverSQLite, dsn)
	cfg.Handler = handler
	cfg.DatabaseDSN = ""
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), consumer.ConfigFileName)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(consumer.EnvDatabaseDSN, dsn)
	return path
}

const missingHandler = "orderstatus.no-such-handler"

func TestAConsumerWhoseHandlerIsNotRegisteredStopsAndWritesWhy(t *testing.T) {
	config := writeConsumerConfig(t, missingHandler)
	termLog := filepath.Join(t.TempDir(), "termination-log")
	err := runConsumerCommand(t, "--config", config, "--termination-log", termLog)
	var nr *consumer.HandlerNotRegisteredError
	if !errors.As(err, &nr) || nr.Handler != missingHandler {
		t.Fatalf("error %v, want a HandlerNotRegisteredError for %s", err, missingHandler)
	}
	got, rerr := os.ReadFile(termLog)
	if rerr != nil {
		t.Fatal(rerr)
	}
	want := `HandlerNotRegistered: handler "` + missingHandler + `" is not registered in this consumer image (registered handlers: ` +
		strings.Join(consumer.HandlerNames(), ", ") + ")"
	if string(got) != want {
		t.Fatalf("termination message\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(string(got), inventory.HandlerName) {
		t.Fatalf("termination message %q does not name the registered %s", got, inventory.HandlerName)
	}
}

func TestAnInvalidConfigurationIsTheTerminationMessage(t *testing.T) {
	termLog := filepath.Join(t.TempDir(), "termination-log")
	t.Setenv(EnvTerminationLog, termLog) // the flag's default comes from the environment
	err := runConsumerCommand(t, "--config", filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil {
		t.Fatal("a missing configuration file was accepted")
	}
	got, rerr := os.ReadFile(termLog)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if reason, msg := consumer.ParseTerminationMessage(string(got)); reason != consumer.TerminationInvalidConfig || !strings.Contains(msg, "nope.yaml") {
		t.Fatalf("termination message %q, want InvalidConfig naming nope.yaml", got)
	}
}

func TestWriteTermination(t *testing.T) {
	stopped, stop := context.WithCancel(context.Background())
	stop()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		exists  bool
		create  bool
		err     error
		want    string // "" no file
		warning bool
	}{
		{name: "An error is written to a path the consumer may create", ctx: context.Background(), create: true,
			err: errors.New("boom"), want: "ConsumerFailed: boom"},
		{name: "An error replaces what a file that exists held", ctx: context.Background(), exists: true,
			err: errors.New("boom"), want: "ConsumerFailed: boom"},
		{name: "A file the kubelet did not create is not created", ctx: context.Background(), err: errors.New("boom")},
		{name: "No error writes nothing", ctx: context.Background(), create: true},
		{name: "A consumer stopped by its signal writes nothing", ctx: stopped, create: true, err: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "termination-log")
			if tc.exists {
				if err := os.WriteFile(path, []byte(strings.Repeat("old ", 100)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var stderr bytes.Buffer
			writeTermination(tc.ctx, path, tc.create, tc.err, &stderr)
			got, err := os.ReadFile(path)
			switch {
			case tc.want == "" && !tc.exists && !errors.Is(err, os.ErrNotExist):
				t.Fatalf("a termination log was written: %q (%v)", got, err)
			case tc.want != "" && string(got) != tc.want:
				t.Fatalf("termination log %q (%v), want %q", got, err, tc.want)
			}
			if stderr.Len() > 0 {
				t.Fatalf("warning %q", stderr.String())
			}
		})
	}
}

func TestATerminationLogThatCannotBeWrittenIsReported(t *testing.T) {
	var stderr bytes.Buffer
	writeTermination(context.Background(), filepath.Join(t.TempDir(), "no", "such", "dir"), true, errors.New("boom"), &stderr)
	if !strings.Contains(stderr.String(), "cannot write the termination message") {
		t.Fatalf("stderr %q, want a warning", stderr.String())
	}
}

// The real binary, as a pod runs it: it exits non-zero and the kubelet finds the message.
func TestTheConsumerBinaryExitsNonZeroWhenItsHandlerIsNotRegistered(t *testing.T) {
	config := writeConsumerConfig(t, missingHandler)
	termLog := filepath.Join(t.TempDir(), "termination-log")
	_, stderr, code := runKafkasubEnv(t, []string{EnvTerminationLog + "=" + termLog, consumer.EnvDatabaseDSN + "=" + os.Getenv(consumer.EnvDatabaseDSN)},
		"consumer", "--config", config)
	if code == 0 {
		t.Fatalf("exit code 0, want non-zero; stderr:\n%s", stderr)
	}
	got, err := os.ReadFile(termLog)
	if err != nil {
		t.Fatal(err)
	}
	reason, msg := consumer.ParseTerminationMessage(string(got))
	if reason != consumer.TerminationHandlerNotRegistered || !strings.Contains(msg, `"`+missingHandler+`"`) || !strings.Contains(msg, inventory.HandlerName) {
		t.Fatalf("termination message %q, want HandlerNotRegistered naming %s and %s", got, missingHandler, inventory.HandlerName)
	}
	if !strings.Contains(stderr, missingHandler) {
		t.Fatalf("stderr does not name the handler:\n%s", stderr)
	}
}
