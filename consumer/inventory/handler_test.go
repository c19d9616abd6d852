package inventory_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/dbfault"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

var backends = consumertest.Databases

func seeded(t testing.TB, b consumertest.Database, opts ...consumer.DatabaseOption) (*gorm.DB, []inventory.Product) {
	t.Helper()
	db := consumertest.OpenDatabase(t, b.Driver, b.DSN(t), opts...)
	if err := inventory.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	products, err := inventory.Seed(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return db, products
}

func msgs(values ...string) []*consumer.Message {
	out := make([]*consumer.Message, len(values))
	for i, v := range values {
		out[i] = &consumer.Message{Topic: "t", Offset: int64(i), Value: []byte(v)}
	}
	return out
}

func inv(t *testing.T, db *gorm.DB, code string) int64 {
	t.Helper()
	p, err := inventory.NewRepository(db).Find(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	return p.Inventory
}

func TestRepositorySetInventories(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			db, products := seeded(t, b)
			a, c := products[0].Code, products[1].Code
			repo := inventory.NewRepository(db)
			updated, err := repo.SetInventories(context.Background(), []inventory.Change{
				{Code: a, Inventory: 1}, {Code: c, Inventory: 2}, {Code: "NOPE", Inventory: 3}, {Code: a, Inventory: 4},
			}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if !updated[a] || !updated[c] || updated["NOPE"] || len(updated) != 2 {
				t.Fatalf("updated %v, want exactly %s and %s", updated, a, c)
			}
			if got := inv(t, db, a); got != 4 {
				t.Errorf("%s inventory %d, want 4 (the last change of a code wins)", a, got)
			}
			if got := inv(t, db, c); got != 2 {
				t.Errorf("%s inventory %d, want 2", c, got)
			}
		})
	}
}

func TestHandlerBatch(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			db, products := seeded(t, b)
			a, c := products[0].Code, products[1].Code
			h := inventory.NewHandler(db)
			ctx := context.Background()

			t.Run("each message gets its own outcome and the valid ones are applied", func(t *testing.T) {
				results, err := h.HandleBatch(ctx, db, msgs(
					fmt.Sprintf(`{"product_code": %q, "inventory_count": 7}`, a),
					`{"product_code": "NO_SUCH_CODE", "inventory_count": 5}`,
					`{"product_code": "NO_SUCH_CODE", "inventory_count": -5}`,
					`this is no good`,
					fmt.Sprintf(`{"product_code": %q, "inventory_count": 8}`, c),
				))
				if err != nil {
					t.Fatal(err)
				}
				want := []string{"", "Product code NO_SUCH_CODE does not exist",
					"Product code NO_SUCH_CODE does not exist; Inventory count must be greater than or equal to 0",
					"payload is not a JSON object", ""}
				for i, w := range want {
					switch {
					case w == "" && results[i] != nil:
						t.Errorf("message %d: %v, want applied", i, results[i])
					case w != "" && (results[i] == nil || !strings.Contains(results[i].Error(), w) || !consumer.IsPermanent(results[i])):
						t.Errorf("message %d: %v, want a permanent error containing %q", i, results[i], w)
					}
				}
				if inv(t, db, a) != 7 || inv(t, db, c) != 8 {
					t.Fatalf("inventories %d and %d, want 7 and 8", inv(t, db, a), inv(t, db, c))
				}
			})

			t.Run("a change the database refuses fails the batch permanently and changes nothing", func(t *testing.T) {
				// The runtime narrows such a batch down to the message that causes it
				// (consumer's TestABatchTheDatabaseRefusesDeadLettersOnlyTheMessageThatCausesIt).
				if err := db.Exec(b.RefuseInventoryAbove1000).Error; err != nil {
					t.Fatal(err)
				}
				_, err := h.HandleBatch(ctx, db, msgs(
					fmt.Sprintf(`{"product_code": %q, "inventory_count": 11}`, a),
					fmt.Sprintf(`{"product_code": %q, "inventory_count": 5000}`, c),
				))
				if consumer.ClassOf(err) != consumer.ClassDatabaseError || !consumer.IsPermanent(err) {
					t.Errorf("batch error %v (class %q), want a permanent DatabaseError", err, consumer.ClassOf(err))
				}
				if inv(t, db, a) != 7 || inv(t, db, c) != 8 {
					t.Fatalf("inventories %d and %d, want 7 and 8 (unchanged: one statement)", inv(t, db, a), inv(t, db, c))
				}
			})
		})
	}
}

func TestHandlerFailsTheBatchTransientlyWhileTheDatabaseIsUnreachable(t *testing.T) {
	gate := dbfault.NewGate()
	db, products := seeded(t, backends[0], consumer.WithConnector(gate.Wrap))
	h := inventory.NewHandler(db)
	gate.SetDown(true)
	_, err := h.HandleBatch(context.Background(), db, msgs(fmt.Sprintf(`{"product_code": %q, "inventory_count": 1}`, products[0].Code)))
	if err == nil || consumer.IsPermanent(err) || consumer.ClassOf(err) != consumer.ClassDatabaseUnavailable {
		t.Fatalf("error %v (class %q), want a transient DatabaseUnavailable", err, consumer.ClassOf(err))
	}
	gate.SetDown(false)
	results, err := h.HandleBatch(context.Background(), db, msgs(fmt.Sprintf(`{"product_code": %q, "inventory_count": 1}`, products[0].Code)))
	if err != nil || results[0] != nil {
		t.Fatalf("after the gate opened: %v %v", err, results)
	}
	if inv(t, db, products[0].Code) != 1 {
		t.Fatal("the update was not applied after the database came back")
	}
}
