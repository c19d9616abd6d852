package inventory_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"testing"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// FuzzHandlerAppliesOrRejectsNeverBoth: whatever the payload, the handler either applies
// it — exactly the row whose code the payload names, byte for byte, gets exactly its
// count — or rejects it and changes nothing, on every database given. The runtime rolls a
// rejected message back anyway; this holds the handler itself to it, so the validator and
// the SQL statement never disagree about which row a code names.
func FuzzHandlerAppliesOrRejectsNeverBoth(f *testing.F) {
	code := inventory.SeedProducts[0].Code
	for _, seed := range []string{
		fmt.Sprintf(`{"product_code": %q, "inventory_count": 25}`, code),
		fmt.Sprintf(`{"product_code": %q, "inventory_count": -1}`, code),
		fmt.Sprintf(`{"product_code": "%s\u0000", "inventory_count": 7}`, code),
		fmt.Sprintf(`{"product_code": "\u0000%s", "inventory_count": 7}`, code),
		fmt.Sprintf(`{"product_code": "%s\u0000", "inventory_count": -7}`, code),
		fmt.Sprintf(`{"product_code": "%s ", "inventory_count": 7}`, code),
		fmt.Sprintf(`{"product_code": "%s\u2028", "inventory_count": 7}`, code),
		fmt.Sprintf(`{"product_code": %q, "product_code": "NOPE", "inventory_count": 7}`, code),
		fmt.Sprintf(`{"product_code": %q, "inventory_count": 9223372036854775808}`, code),
		fmt.Sprintf(`{"product_code": %q, "inventory_count": 1e2}`, code),
		"{\"product_code\": \"" + code + "\xff\", \"inventory_count\": 7}",
		`{"product_code": "NO_SUCH_CODE", "inventory_count": 5}`,
		`{"greeting": "hello"}`,
		`this is no good`,
		`null`,
		``,
	} {
		f.Add([]byte(seed))
	}
	ctx := context.Background()
	type target struct {
		name string
		db   *gorm.DB
	}
	var targets []target
	for _, b := range backends {
		if b.Driver == consumer.DriverPostgres && os.Getenv(consumertest.EnvPostgresDSN) == "" {
			continue
		}
		db, _ := seeded(f, b)
		targets = append(targets, target{b.Name, db})
	}
	h := inventory.NewHandler(nil)
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, tg := range targets {
			tx := tg.db.Begin()
			before := inventories(t, tx)
			results, err := h.HandleBatch(ctx, tx, []*consumer.Message{{Topic: "t", Value: payload}})
			after := inventories(t, tx)
			if rerr := tx.Rollback().Error; rerr != nil {
				t.Fatal(rerr)
			}
			if err != nil {
				if !consumer.IsPermanent(err) {
					t.Fatalf("%s: %q: a transient batch error %v with the database up", tg.name, payload, err)
				}
				continue // the runtime rolls back and narrows; nothing to hold the handler to
			}
			if results[0] != nil {
				if !consumer.IsPermanent(results[0]) || results[0].Error() == "" {
					t.Fatalf("%s: %q: result %v, want a permanent error with a reason", tg.name, payload, results[0])
				}
				if !maps.Equal(before, after) {
					t.Fatalf("%s: %q was rejected (%v) but changed the database", tg.name, payload, results[0])
				}
				continue
			}
			u, derr := inventory.Decode(payload)
			if derr != nil {
				t.Fatalf("%s: %q applied, but it does not decode: %v", tg.name, payload, derr)
			}
			c, verr := inventory.Validate(u, func(string) bool { return true })
			if verr != nil {
				t.Fatalf("%s: %q applied, but it is not valid: %v", tg.name, payload, verr)
			}
			want := maps.Clone(before)
			if _, ok := want[c.Code]; !ok {
				t.Fatalf("%s: %q applied, but no row has code %q", tg.name, payload, c.Code)
			}
			want[c.Code] = c.Inventory
			if !maps.Equal(want, after) {
				t.Fatalf("%s: %q applied to other rows than %q: before %v, after %v", tg.name, payload, c.Code, before, after)
			}
		}
	})
}
