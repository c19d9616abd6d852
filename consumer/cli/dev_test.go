package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutines of runDev and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDevConsoleTogglesTheDatabaseAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdin, typed := io.Pipe()
	defer typed.Close()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, stdin, &out, &errOut, devOptions{listen: "127.0.0.1:0", partitions: 1, logLevel: "error", console: true})
	}()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if strings.Contains(out.String(), what) {
				return
			}
			select {
			case err := <-done:
				t.Fatalf("dev returned %v before printing %q:\n%s%s", err, what, out.String(), errOut.String())
			default:
			}
		}
		t.Fatalf("dev did not print %q:\n%s%s", what, out.String(), errOut.String())
	}
	waitFor(DevReadyLine)
	var broker string
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "broker" {
			broker = f[1]
		}
	}
	if broker == "" {
		t.Fatalf("no broker line:\n%s", out.String())
	}

	type console struct{ typed, printed string }
	for _, c := range []console{
		{"products", "console        KB-MECH-001  Mechanical keyboard          inventory 10"},
		{"help", `commands: "db down", "db up", "products", "help"`},
		{"  db   down ", "console        the consumer's database is now unreachable"},
		{"drop table products", `console        unknown command "drop table products"; try help`},
	} {
		fmt.Fprintln(typed, c.typed)
		waitFor(c.printed)
	}

	// While the consumer's database is down a valid update is retried, and applied once it is up.
	sc := sarama.NewConfig()
	sc.Producer.Return.Successes = true
	producer, err := sarama.NewSyncProducer([]string{broker}, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: inventory.Topic,
		Value: sarama.StringEncoder(`{"product_code": "MS-WL-002", "inventory_count": 1}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor("retrying       " + inventory.Topic + " partition 0 offset 0")
	waitFor("database       does not answer")
	if strings.Contains(out.String(), "applied") {
		t.Fatalf("applied while the database was down:\n%s", out.String())
	}
	fmt.Fprintln(typed, "db up")
	waitFor("console        the consumer's database is reachable again")
	waitFor("applied        " + inventory.Topic + " partition 0 offset 0")
	fmt.Fprintln(typed, "products")
	waitFor("MS-WL-002    Wireless mouse               inventory 1")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev returned %v after cancel", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("dev did not stop within a minute of cancel")
	}
	if !strings.HasSuffix(out.String(), "Stopping.\n") {
		t.Errorf("dev did not end with Stopping.:\n%s", out.String())
	}
}
