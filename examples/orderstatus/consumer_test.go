package orderstatus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/dbfault"
	"github.com/kafkasub/kafkasub/examples/orderstatus"
)

// The runtime every pod runs, with this handler, on an in-process Kafka broker and SQLite:
// it applies, dead-letters and retries like the inventory handler does.
func TestTheConsumerAppliesDeadLettersAndRetries(t *testing.T) {
	topic, dlq := consumertest.UniqueName("orders"), consumertest.UniqueName("orders_dlq")
	brokers := consumertest.Kfake(t, 1, topic, dlq)
	dsn := consumertest.SQLiteDSN(t)
	gate := dbfault.NewGate()
	db := consumertest.OpenDatabase(t, consumer.DriverSQLite, dsn, consumer.WithConnector(gate.Wrap))
	reader := orders(t, consumertest.Database{Name: "SQLite", Driver: consumer.DriverSQLite, DSN: func(testing.TB) string { return dsn }})

	cfg := consumertest.Config(brokers, topic, dlq, consumer.DriverSQLite, dsn)
	cfg.Handler = orderstatus.HandlerName
	monitor := consumer.NewMonitor()
	retrying := make(chan consumer.Event, 16)
	monitor.Subscribe(func(e consumer.Event) {
		select {
		case retrying <- e:
		default:
		}
	}, consumer.EventRetrying)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- consumer.Run(ctx, cfg, consumer.WithDatabase(db), consumer.WithMonitor(monitor), consumer.WithoutHTTP())
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("consumer: %v", err)
		}
	})
	producer := consumertest.Producer(t, brokers)

	consumertest.Produce(t, producer, topic, set("O-1", "paid"), set("O-9", "paid"), `this is no good`, set("O-3", "pending"))
	waitFor(t, "O-1 to be paid", func() bool { return statuses(t, reader)["O-1"] == "paid" })
	letters := consumertest.ReadTopic(t, brokers, dlq, 3, 20*time.Second)
	var classes []string
	for _, l := range letters {
		for _, h := range l.Headers {
			if string(h.Key) == consumer.HeaderErrorClass {
				classes = append(classes, string(h.Value))
			}
		}
	}
	want := []string{"ValidationFailed", "InvalidPayload", "ValidationFailed"}
	if len(classes) != len(want) || classes[0] != want[0] || classes[1] != want[1] || classes[2] != want[2] {
		t.Fatalf("dead-letter classes %v, want %v", classes, want)
	}
	if got := statuses(t, reader)["O-3"]; got != "delivered" {
		t.Fatalf("O-3 is %s, want still delivered", got)
	}

	gate.SetDown(true)
	consumertest.Produce(t, producer, topic, set("O-2", "shipped"))
	select {
	case e := <-retrying:
		if e.Class != consumer.ClassDatabaseUnavailable {
			t.Fatalf("retrying with class %s, want DatabaseUnavailable", e.Class)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no retry while the database was down")
	}
	gate.SetDown(false)
	waitFor(t, "O-2 to be shipped once the database is back", func() bool { return statuses(t, reader)["O-2"] == "shipped" })
	if n := len(consumertest.ReadTopic(t, brokers, dlq, 4, time.Second)); n != 3 {
		t.Fatalf("%d dead letters, want still 3 (a database outage is never dead-lettered)", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
