package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// TestTheErrorPolicyDecidesWhatAPermanentErrorDoes: per error class, skip commits the
// message without a dead letter (and says so), retry backs off like a transient error until
// it succeeds or retry.maxAttempts is spent (then RetriesExhausted, dead-lettered), and
// every other class is dead-lettered as before. The message after each is applied.
func TestTheErrorPolicyDecidesWhatAPermanentErrorDoes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		policy      map[consumer.ErrorClass]consumer.ErrorAction
		maxAttempts int
		value       string
		created     bool // the product LATE-1 is created after the first retry
		want        consumer.EventType
		class       consumer.ErrorClass
		letters     int
	}{
		{"skip: an unexpected attribute is committed without a dead letter",
			map[consumer.ErrorClass]consumer.ErrorAction{consumer.ClassUnexpectedAttributes: consumer.ActionSkip}, 0,
			`{"greeting": "hello"}`, false, consumer.EventSkipped, consumer.ClassUnexpectedAttributes, 0},
		{"retry: an update of a product that does not exist yet is applied once it does",
			map[consumer.ErrorClass]consumer.ErrorAction{consumer.ClassValidationFailed: consumer.ActionRetry}, 100,
			`{"product_code": "LATE-1", "inventory_count": 7}`, true, consumer.EventProcessed, "", 0},
		{"retry: after retry.maxAttempts the message is dead-lettered as RetriesExhausted",
			map[consumer.ErrorClass]consumer.ErrorAction{consumer.ClassValidationFailed: consumer.ActionRetry}, 3,
			`{"product_code": "LATE-1", "inventory_count": 7}`, false, consumer.EventDeadLettered, consumer.ClassRetriesExhausted, 1},
		{"skip after retry: RetriesExhausted skipped",
			map[consumer.ErrorClass]consumer.ErrorAction{consumer.ClassValidationFailed: consumer.ActionRetry, consumer.ClassRetriesExhausted: consumer.ActionSkip}, 2,
			`{"product_code": "LATE-1", "inventory_count": 7}`, false, consumer.EventSkipped, consumer.ClassRetriesExhausted, 0},
		{"no policy for the class: dead-lettered",
			map[consumer.ErrorClass]consumer.ErrorAction{consumer.ClassInvalidPayload: consumer.ActionSkip}, 0,
			`{"greeting": "hello"}`, false, consumer.EventDeadLettered, consumer.ClassUnexpectedAttributes, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic := consumertest.UniqueName("policy")
			brokers := consumertest.Kfake(t, 1, topic, topic+".dlq")
			dsn, first := seededSQLite(t)
			cfg := consumertest.Config(brokers, topic, topic+".dlq", consumer.DriverSQLite, dsn)
			cfg.ErrorPolicy = tc.policy
			cfg.Retry.MaxAttempts = tc.maxAttempts
			cfg.Retry.InitialBackoff.Duration, cfg.Retry.MaxBackoff.Duration = 20*time.Millisecond, 50*time.Millisecond
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			r := startConsumer(t, cfg)
			defer r.stop()
			consumertest.Produce(t, consumertest.Producer(t, brokers), topic,
				tc.value, fmt.Sprintf(`{"product_code": %q, "inventory_count": 41}`, first.Code))
			db := consumertest.OpenDatabase(t, consumer.DriverSQLite, dsn)
			if tc.created {
				r.out.waitFor(t, "a retry", 30*time.Second, func() bool { return r.out.retries > 0 })
				if err := inventory.Insert(context.Background(), db, []inventory.Product{{Code: "LATE-1", Name: "late"}}); err != nil {
					t.Fatal(err)
				}
			}
			ev := r.out.outcome(t, 0, 0)
			if ev.Type != tc.want || ev.Class != tc.class {
				t.Fatalf("offset 0: %s %s (%v), want %s %s", ev.Type, ev.Class, ev.Err, tc.want, tc.class)
			}
			if next := r.out.outcome(t, 0, 1); next.Type != consumer.EventProcessed {
				t.Fatalf("offset 1: %s (%v), want processed", next.Type, next.Err)
			}
			if tc.created {
				if got := inventoryOf(t, db, "LATE-1"); got != 7 {
					t.Fatalf("LATE-1 inventory %d, want 7", got)
				}
			}
			if got := len(consumertest.ReadTopic(t, brokers, topic+".dlq", tc.letters, 5*time.Second)); got != tc.letters {
				t.Fatalf("%d dead letters, want %d", got, tc.letters)
			}
			if got := storedOffset(t, db, cfg, 0); got != 1 {
				t.Fatalf("stored offset %d, want 1 (both messages settled)", got)
			}
			if tc.want == consumer.EventSkipped {
				if s, raw := getStatus(t, r.c); s.Messages.Skipped != 1 {
					t.Fatalf("/status counts %d skipped, want 1: %s", s.Messages.Skipped, raw)
				}
			}
		})
	}
}
