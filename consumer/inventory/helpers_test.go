package inventory_test

import (
	"context"
	"database/sql"
	"testing"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

var backends = consumertest.Databases

// seeded opens a database of b, migrated and seeded with inventory.SeedProducts.
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

// inventories returns every product's inventory by code, as db (or a transaction) sees it.
func inventories(t testing.TB, db *gorm.DB) map[string]int64 {
	t.Helper()
	var rows []inventory.Product
	if err := db.Order("code").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int64, len(rows))
	for _, p := range rows {
		out[p.Code] = p.Inventory
	}
	return out
}

// withInventories returns before with the inventories of codes changed to counts.
func withInventories(before map[string]int64, changes map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(before))
	for c, n := range before {
		out[c] = n
	}
	for c, n := range changes {
		out[c] = n
	}
	return out
}

// counted begins a transaction on db that counts the statements run through it; it is
// rolled back when the test ends.
func counted(t testing.TB, db *gorm.DB) (*gorm.DB, *int) {
	t.Helper()
	tx := db.Begin()
	if tx.Error != nil {
		t.Fatal(tx.Error)
	}
	n := new(int)
	tx.Statement.ConnPool = &countingPool{ConnPool: tx.Statement.ConnPool, n: n}
	t.Cleanup(func() { tx.Rollback() })
	return tx, n
}

// countingPool counts the statements of a transaction's connection pool.
type countingPool struct {
	gorm.ConnPool
	n *int
}

func (p *countingPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	*p.n++
	return p.ConnPool.ExecContext(ctx, query, args...)
}

func (p *countingPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	*p.n++
	return p.ConnPool.QueryContext(ctx, query, args...)
}

func (p *countingPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	*p.n++
	return p.ConnPool.QueryRowContext(ctx, query, args...)
}

func (p *countingPool) Commit() error   { return p.ConnPool.(gorm.TxCommitter).Commit() }
func (p *countingPool) Rollback() error { return p.ConnPool.(gorm.TxCommitter).Rollback() }
