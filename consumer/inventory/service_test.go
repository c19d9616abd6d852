package inventory_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/dbfault"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// updates decodes payloads (they must decode: the service gets decoded updates).
func updates(t testing.TB, payloads ...string) []*inventory.ProductUpdate {
	t.Helper()
	out := make([]*inventory.ProductUpdate, len(payloads))
	for i, p := range payloads {
		u, err := inventory.Decode([]byte(p))
		if err != nil {
			t.Fatalf("Decode(%q): %v", p, err)
		}
		out[i] = u
	}
	return out
}

func TestServiceSetInventories(t *testing.T) {
	a, b := inventory.SeedProducts[0].Code, inventory.SeedProducts[1].Code
	set := func(code string, n int) string {
		return fmt.Sprintf(`{"product_code": %q, "inventory_count": %d}`, code, n)
	}
	for _, tc := range []struct {
		name       string
		payloads   []string
		results    []string // "" applied, else the validation messages
		want       map[string]int64
		statements int
		// sqliteLookup: a valid update's product does not exist, so SQLite's statement
		// changed fewer rows than it had codes, and one more statement looks up which.
		sqliteLookup bool
	}{
		{name: "A valid update sets its product's inventory in one statement",
			payloads: []string{set(a, 25)}, results: []string{""}, want: map[string]int64{a: 25}, statements: 1},
		{name: "Every update gets its own outcome and only the valid ones are applied",
			payloads: []string{set(a, 7), set("NO_SUCH_CODE", 5), set("NO_SUCH_CODE", -5), set(b, 8)},
			results:  []string{"", "Product code NO_SUCH_CODE does not exist", "Product code NO_SUCH_CODE does not exist; Inventory count must be greater than or equal to 0", ""},
			want:     map[string]int64{a: 7, b: 8}, statements: 1, sqliteLookup: true},
		{name: "The last valid update of a product wins",
			payloads: []string{set(a, 1), set(a, 2), set(a, 3)}, results: []string{"", "", ""}, want: map[string]int64{a: 3}, statements: 1},
		{name: "An invalid update of a product leaves the valid one before it applied",
			payloads: []string{set(a, 7), set(a, -1)}, results: []string{"", inventory.MsgInventoryCountNegative}, want: map[string]int64{a: 7}, statements: 1},
		{name: "An update with two problems is looked up once so that both are listed",
			payloads: []string{set("NO_SUCH_CODE", -5), set(a, 4), set("ALSO_NOT", -1)},
			results:  []string{"Product code NO_SUCH_CODE does not exist; Inventory count must be greater than or equal to 0", "", "Product code ALSO_NOT does not exist; Inventory count must be greater than or equal to 0"},
			want:     map[string]int64{a: 4}, statements: 2},
		{name: "An invalid update of a product another update applies needs no lookup",
			payloads: []string{set(a, -1), set(a, 9)}, results: []string{inventory.MsgInventoryCountNegative, ""}, want: map[string]int64{a: 9}, statements: 1},
		{name: "A code with a NUL is refused and never reaches a statement",
			payloads: []string{`{"product_code": "` + a + `\u0000", "inventory_count": 3}`}, results: []string{inventory.MsgProductCodeInvalid}, statements: 0},
		{name: "A batch without a valid update looks its codes up once and updates nothing",
			payloads: []string{set(a, -1), `{"inventory_count": 1}`}, results: []string{inventory.MsgInventoryCountNegative, inventory.MsgProductCodeBlank}, statements: 1},
		{name: "An empty batch asks the database nothing", statements: 0},
	} {
		for _, bk := range backends {
			t.Run(bk.Name+"/"+tc.name, func(t *testing.T) {
				db, _ := seeded(t, bk)
				tx, statements := counted(t, db)
				before := inventories(t, tx)
				*statements = 0
				results, err := inventory.NewService().SetInventories(context.Background(), tx, updates(t, tc.payloads...))
				if err != nil {
					t.Fatal(err)
				}
				want := tc.statements
				if tc.sqliteLookup && bk.Driver == consumer.DriverSQLite {
					want++
				}
				if *statements != want {
					t.Errorf("%d statements, want %d", *statements, want)
				}
				if len(results) != len(tc.payloads) {
					t.Fatalf("%d results for %d updates", len(results), len(tc.payloads))
				}
				for i, want := range tc.results {
					switch {
					case want == "" && results[i] != nil:
						t.Errorf("update %d: %v, want applied", i, results[i])
					case want != "" && (results[i] == nil || results[i].Error() != want || consumer.ClassOf(results[i]) != consumer.ClassValidationFailed || !consumer.IsPermanent(results[i])):
						t.Errorf("update %d: %v, want a permanent ValidationFailed %q", i, results[i], want)
					}
				}
				if got, want := inventories(t, tx), withInventories(before, tc.want); !maps.Equal(got, want) {
					t.Errorf("inventories %v, want %v", got, want)
				}
			})
		}
	}
}

func TestServiceFailsTheBatchPermanentlyWhenTheDatabaseRefusesAChange(t *testing.T) {
	a, b := inventory.SeedProducts[0].Code, inventory.SeedProducts[1].Code
	for _, bk := range backends {
		t.Run(bk.Name, func(t *testing.T) {
			db, _ := seeded(t, bk)
			if err := db.Exec(bk.RefuseInventoryAbove1000).Error; err != nil {
				t.Fatal(err)
			}
			before := inventories(t, db)
			// Outside a transaction, so that what the statements did stays. The runtime narrows such a batch down to the message that causes it
			// (consumer's TestABatchTheDatabaseRefusesDeadLettersOnlyTheMessageThatCausesIt).
			_, err := inventory.NewService().SetInventories(context.Background(), db, updates(t,
				`{"product_code": "`+a+`", "inventory_count": 11}`, `{"product_code": "`+b+`", "inventory_count": 5000}`))
			if consumer.ClassOf(err) != consumer.ClassDatabaseError || !consumer.IsPermanent(err) {
				t.Errorf("batch error %v (class %q), want a permanent DatabaseError", err, consumer.ClassOf(err))
			}
			if got := inventories(t, db); !maps.Equal(got, before) {
				t.Errorf("inventories %v, want %v (one statement: nothing applied)", got, before)
			}
		})
	}
}

func TestServiceFailsTheBatchTransientlyWhileTheDatabaseIsUnreachable(t *testing.T) {
	gate := dbfault.NewGate()
	db, products := seeded(t, backends[0], consumer.WithConnector(gate.Wrap))
	batch := updates(t, `{"product_code": "`+products[0].Code+`", "inventory_count": 1}`)
	gate.SetDown(true)
	_, err := inventory.NewService().SetInventories(context.Background(), db, batch)
	if err == nil || consumer.IsPermanent(err) || consumer.ClassOf(err) != consumer.ClassDatabaseUnavailable {
		t.Fatalf("error %v (class %q), want a transient DatabaseUnavailable", err, consumer.ClassOf(err))
	}
	gate.SetDown(false)
	results, err := inventory.NewService().SetInventories(context.Background(), db, batch)
	if err != nil || results[0] != nil {
		t.Fatalf("after the gate opened: %v %v", err, results)
	}
	if got := inventories(t, db)[products[0].Code]; got != 1 {
		t.Fatalf("inventory %d after the database came back, want 1", got)
	}
}
