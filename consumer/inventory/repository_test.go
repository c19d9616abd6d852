package inventory_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

func TestRepositorySetInventories(t *testing.T) {
	a, b := inventory.SeedProducts[0].Code, inventory.SeedProducts[1].Code
	for _, tc := range []struct {
		name    string
		changes []inventory.Change
		updated []string
		want    map[string]int64
		// lookup: a code has no product, so SQLite's statement changed fewer rows than it
		// had codes and a second statement looks up which codes have one.
		lookup bool
	}{
		{name: "Each change sets its product's inventory and reports its code",
			changes: []inventory.Change{{Code: a, Inventory: 1}, {Code: b, Inventory: 2}},
			updated: []string{a, b}, want: map[string]int64{a: 1, b: 2}},
		{name: "The last change of a code wins",
			changes: []inventory.Change{{Code: a, Inventory: 1}, {Code: b, Inventory: 2}, {Code: a, Inventory: 4}},
			updated: []string{a, b}, want: map[string]int64{a: 4, b: 2}},
		{name: "A code no product has changes nothing and is not reported",
			changes: []inventory.Change{{Code: "NOPE", Inventory: 3}, {Code: a, Inventory: 5}},
			updated: []string{a}, want: map[string]int64{a: 5}, lookup: true},
		{name: "A code differs from one with spaces around it",
			changes: []inventory.Change{{Code: " " + a + " ", Inventory: 6}},
			updated: nil, want: nil, lookup: true},
		{name: "No changes run no statement", changes: nil, updated: nil, want: nil},
	} {
		for _, bk := range backends {
			t.Run(bk.Name+"/"+tc.name, func(t *testing.T) {
				db, _ := seeded(t, bk)
				tx, statements := counted(t, db)
				before := inventories(t, tx)
				*statements = 0
				updated, err := inventory.NewRepository(tx).SetInventories(context.Background(), tc.changes, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if got := slices.Sorted(maps.Keys(updated)); !slices.Equal(got, tc.updated) {
					t.Errorf("updated %v, want %v", got, tc.updated)
				}
				wantStatements := 1
				if len(tc.changes) == 0 {
					wantStatements = 0
				} else if tc.lookup && bk.Driver == consumer.DriverSQLite {
					wantStatements = 2
				}
				if *statements != wantStatements {
					t.Errorf("%d statements, want %d", *statements, wantStatements)
				}
				if got, want := inventories(t, tx), withInventories(before, tc.want); !maps.Equal(got, want) {
					t.Errorf("inventories %v, want %v", got, want)
				}
			})
		}
	}
}

func TestRepositoryExistingCodes(t *testing.T) {
	a, b := inventory.SeedProducts[0].Code, inventory.SeedProducts[1].Code
	for _, tc := range []struct {
		name  string
		codes []string
		want  []string
	}{
		{name: "Codes of products are reported and others are not", codes: []string{a, "NOPE", b}, want: []string{a, b}},
		{name: "A code asked for twice is reported once", codes: []string{a, a}, want: []string{a}},
		{name: "A code is compared exactly", codes: []string{" " + a, a + " "}, want: nil},
		{name: "No codes run no statement", codes: nil, want: nil},
	} {
		for _, bk := range backends {
			t.Run(bk.Name+"/"+tc.name, func(t *testing.T) {
				db, _ := seeded(t, bk)
				tx, statements := counted(t, db)
				existing, err := inventory.NewRepository(tx).ExistingCodes(context.Background(), tc.codes)
				if err != nil {
					t.Fatal(err)
				}
				if got := slices.Sorted(maps.Keys(existing)); !slices.Equal(got, tc.want) {
					t.Errorf("existing %v, want %v", got, tc.want)
				}
				if want := min(len(tc.codes), 1); *statements != want {
					t.Errorf("%d statements, want %d", *statements, want)
				}
			})
		}
	}
}

// A statement that fails after changing some of its rows changes nothing once its
// transaction is rolled back, which the runtime does on every error. SQLite runs the
// statement OR FAIL (a failure keeps the rows changed so far rather than undoing them
// from a statement journal), so the rollback is what undoes them there.
func TestRepositorySetInventoriesFailingPartwayChangesNothing(t *testing.T) {
	a, b := inventory.SeedProducts[0].Code, inventory.SeedProducts[1].Code
	refuse := map[string][]string{
		consumer.DriverSQLite: {`CREATE TRIGGER refuse BEFORE UPDATE ON products WHEN NEW.code = '` + b + `'
			BEGIN SELECT RAISE(FAIL, 'refused'); END`},
		consumer.DriverPostgres: {`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN RAISE EXCEPTION 'refused'; END $$`,
			`CREATE TRIGGER refuse BEFORE UPDATE ON products FOR EACH ROW WHEN (NEW.code = '` + b + `')
			EXECUTE FUNCTION refuse()`},
	}
	for _, bk := range backends {
		t.Run(bk.Name, func(t *testing.T) {
			db, _ := seeded(t, bk)
			for _, stmt := range refuse[bk.Driver] {
				if err := db.Exec(stmt).Error; err != nil {
					t.Fatal(err)
				}
			}
			before := inventories(t, db)
			repo := inventory.NewRepository(db)
			err := repo.Transaction(context.Background(), func(tx *inventory.Repository) error {
				_, err := tx.SetInventories(context.Background(),
					[]inventory.Change{{Code: a, Inventory: 1001}, {Code: b, Inventory: 1002}}, time.Now())
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("error %v, want the trigger's refusal", err)
			}
			if !consumer.IsPermanent(err) || consumer.ClassOf(err) != consumer.ClassDatabaseError {
				t.Errorf("error %v: permanent %v, class %s; want a permanent %s", err, consumer.IsPermanent(err),
					consumer.ClassOf(err), consumer.ClassDatabaseError)
			}
			if got := inventories(t, db); !maps.Equal(got, before) {
				t.Errorf("inventories %v, want them unchanged %v", got, before)
			}
		})
	}
}
