package embedded

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkasub/kafkasub/consumer"
)

func TestStackRunsTheRealConsumerThroughTheConfigContract(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("Close left the temporary directory %s behind (stat: %v)", dir, err)
		}
	}()
	if len(s.Products) == 0 {
		t.Fatal("the database was not seeded")
	}
	first := s.Products[0]

	mon := consumer.NewMonitor()
	events := make(chan consumer.Event, 16)
	mon.Subscribe(func(e consumer.Event) { events <- e }, consumer.EventProcessed, consumer.EventDeadLettered)
	c, path, err := s.NewConsumer(nil, consumer.WithMonitor(mon),
		consumer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != s.Dir {
		t.Errorf("config written to %s, want it in %s", path, s.Dir)
	}
	cfg, err := consumer.Load(path, s.Getenv)
	if err != nil {
		t.Fatalf("the written config does not load: %v", err)
	}
	if cfg.Database.Driver != consumer.DriverSQLite || cfg.DatabaseDSN != s.DatabaseDSN || cfg.DeadLetter.Topic != s.DeadLetterTopic {
		t.Errorf("loaded config %+v does not describe the stack", cfg)
	}
	data, _ := os.ReadFile(path)
	if want := s.DatabasePath; len(want) > 0 && strings.Contains(string(data), want) {
		t.Errorf("the config file holds the database DSN; it must come from %s", consumer.EnvDatabaseDSN)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	}()

	sc := sarama.NewConfig()
	sc.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(s.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: s.Topic,
		Value: sarama.StringEncoder(fmt.Sprintf(`{"product_code": %q, "inventory_count": 77}`, first.Code))})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.Type != consumer.EventProcessed || e.Offset != off {
			t.Fatalf("got %s at offset %d (%v), want %s at offset %d", e.Type, e.Offset, e.Err, consumer.EventProcessed, off)
		}
	case <-ctx.Done():
		t.Fatal("the consumer did not process the message")
	}
	got, err := s.Product(ctx, first.Code)
	if err != nil {
		t.Fatal(err)
	}
	if got.Inventory != 77 {
		t.Errorf("inventory of %s is %d, want 77", first.Code, got.Inventory)
	}
}

func TestStartRejectsABadListenAddress(t *testing.T) {
	_, err := Start(context.Background(), Options{ListenAddr: "localhost"})
	if err == nil || !strings.Contains(err.Error(), `"localhost" is not host:port`) {
		t.Fatalf("got %v, want an error naming the listen address", err)
	}
}

func TestStartNamesADatabaseFileThatIsNotSQLiteAndLeavesItAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	content := []byte("these are notes, not a database\n")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{DatabasePath: path})
	if err == nil || !strings.Contains(err.Error(), "database "+path+": ") {
		t.Fatalf("got %v, want an error naming %s", err, path)
	}
	if got, _ := os.ReadFile(path); string(got) != string(content) {
		t.Errorf("the file was changed to %q", got)
	}
}
