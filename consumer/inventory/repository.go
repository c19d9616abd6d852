package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
)

// Repository reads and writes products with gorm (PostgreSQL through pgx, MySQL, or SQLite
// in pure Go). Every error it returns is classified: consumer.Transient with
// consumer.ClassDatabaseUnavailable for connection failures, timeouts and lock conflicts,
// consumer.Permanent with consumer.ClassDatabaseError when the database refused a statement.
type Repository struct {
	db *gorm.DB
}

// NewRepository returns a repository on db.
func NewRepository(db *gorm.DB) *Repository { return &Repository{db: db} }

// DB returns the repository's database.
func (r *Repository) DB() *gorm.DB { return r.db }

// Transaction runs fn in one database transaction with a repository bound to it; it
// commits when fn returns nil.
func (r *Repository) Transaction(ctx context.Context, fn func(tx *Repository) error) error {
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(&Repository{db: tx})
	})
	return consumer.ClassifyDatabaseError(err)
}

// Find returns the product with code; gorm.ErrRecordNotFound (permanent) when there is none.
func (r *Repository) Find(ctx context.Context, code string) (Product, error) {
	var p Product
	err := r.db.WithContext(ctx).Where("code = ?", code).Take(&p).Error
	return p, consumer.ClassifyDatabaseError(err)
}

// ExistingCodes returns which of codes have a product, in one constant statement on
// PostgreSQL (an array) and SQLite (a JSON array, asking for the codes that have none),
// an IN list elsewhere.
func (r *Repository) ExistingCodes(ctx context.Context, codes []string) (map[string]bool, error) {
	found := make(map[string]bool, len(codes))
	if len(codes) == 0 {
		return found, nil
	}
	uniq := slices.Clone(codes)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	var rows []string
	var err error
	switch r.db.Name() {
	case "postgres":
		err = r.scanCodes(ctx, &rows, postgresExistingCodes, uniq)
	case "sqlite":
		list, jerr := json.Marshal(uniq)
		if jerr != nil {
			return nil, consumer.Permanent(consumer.ClassDatabaseError, jerr)
		}
		var missing []string
		if err = r.scanCodes(ctx, &missing, sqliteMissingCodes, string(list)); err == nil {
			none := make(map[string]bool, len(missing))
			for _, c := range missing {
				none[c] = true
			}
			rows = slices.DeleteFunc(uniq, func(c string) bool { return none[c] })
		}
	default:
		err = r.db.WithContext(ctx).Model(&Product{}).Where("code IN ?", uniq).Pluck("code", &rows).Error
	}
	if err != nil {
		return nil, fmt.Errorf("look up product codes: %w", consumer.ClassifyDatabaseError(err))
	}
	for _, c := range rows {
		found[c] = true
	}
	return found, nil
}

// scanCodes runs a query of one text column on the connection pool directly: gorm would
// expand slice arguments into lists, and its Scan costs a quarter of a SQLite batch.
func (r *Repository) scanCodes(ctx context.Context, out *[]string, query string, args ...any) error {
	rows, err := r.db.Statement.ConnPool.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return err
		}
		*out = append(*out, c)
	}
	return rows.Err()
}

// SetInventories sets the inventory of each change's product in one statement (one
// transaction) and returns the codes it updated: a code that is missing has no product.
// When a code appears more than once the last change wins (messages are applied in order).
//
// PostgreSQL gets one constant statement over two arrays (prepared once, a hash join);
// SQLite one constant statement over a JSON object (json_each), and a lookup of the codes
// only when it changed fewer rows than it had codes (setSQLite); MySQL, which has no
// RETURNING, a transaction that reads the existing codes and then updates.
//
// On SQLite the statement runs OR FAIL: a statement that fails keeps the rows it changed
// until its transaction is rolled back, which every caller does on an error (the runtime
// does). Under the default (OR ABORT) SQLite copies each page the statement changes into a
// statement journal first, to undo the statement alone: a fifth of the consumer's CPU in
// BenchmarkPipelineSQLite.
func (r *Repository) SetInventories(ctx context.Context, changes []Change, now time.Time) (map[string]bool, error) {
	updated := make(map[string]bool, len(changes))
	if len(changes) == 0 {
		return updated, nil
	}
	last := make(map[string]int64, len(changes))
	order := make([]string, 0, len(changes))
	for _, c := range changes {
		if _, seen := last[c.Code]; !seen {
			order = append(order, c.Code)
		}
		last[c.Code] = c.Inventory
	}
	var err error
	switch r.db.Name() {
	case "postgres":
		err = r.setPostgres(ctx, order, last, now, updated)
	case "mysql":
		err = r.Transaction(ctx, func(tx *Repository) error {
			existing, err := tx.ExistingCodes(ctx, order)
			if err != nil {
				return err
			}
			sql, args := caseUpdate(order, last, now, "CAST(? AS SIGNED)", false)
			if err := tx.db.WithContext(ctx).Exec(sql, args...).Error; err != nil {
				return consumer.ClassifyDatabaseError(err)
			}
			for c := range existing {
				updated[c] = true
			}
			return nil
		})
	default: // SQLite: one constant statement over a JSON object {"code": inventory, ...}
		obj, jerr := json.Marshal(last)
		if jerr != nil {
			return nil, consumer.Permanent(consumer.ClassDatabaseError, jerr)
		}
		err = r.setSQLite(ctx, order, string(obj), now, updated)
	}
	if err != nil {
		return nil, fmt.Errorf("set inventories: %w", consumer.ClassifyDatabaseError(err))
	}
	return updated, nil
}

// postgresExistingCodes joins the codes as a relation: `code = ANY($1)` in the generic plan
// of a prepared statement is a linear search of the array per row (6 ms for 500 codes in
// 1,000 products, against 0.3 ms).
const postgresExistingCodes = `SELECT p.code FROM products AS p JOIN unnest($1::text[]) AS v(code) ON p.code = v.code`

// sqliteMissingCodes returns the codes that have no product, which are few: every row
// SQLite returns is handed over one call at a time, on the connection every partition
// waits for.
const sqliteMissingCodes = `SELECT j.value FROM json_each(?) AS j
WHERE NOT EXISTS (SELECT 1 FROM products AS p WHERE p.code = j.value)`

const sqliteSetInventories = `UPDATE OR FAIL products SET inventory = j.value, updated_at = ?
FROM json_each(?) AS j WHERE products.code = j.key`

// setSQLite runs sqliteSetInventories over obj (order's codes and inventories) and marks in
// updated the codes it found. The statement reports how many rows it changed rather than
// which (RETURNING costs SQLite an ephemeral table of the codes, which every partition
// waits for on the one connection); when that is fewer than the codes, which is rare, a
// lookup says which codes have a product. (A code names one row at most: the code column
// has a unique index.)
func (r *Repository) setSQLite(ctx context.Context, order []string, obj string, now time.Time, updated map[string]bool) error {
	res, err := r.db.Statement.ConnPool.ExecContext(ctx, sqliteSetInventories, now, obj)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == int64(len(order)) {
		for _, c := range order {
			updated[c] = true
		}
		return nil
	}
	found, err := r.ExistingCodes(ctx, order)
	if err != nil {
		return err
	}
	maps.Copy(updated, found)
	return nil
}

const postgresSetInventories = `UPDATE products AS p SET inventory = v.inventory, updated_at = $3
FROM unnest($1::text[], $2::bigint[]) AS v(code, inventory)
WHERE p.code = v.code RETURNING v.code`

func (r *Repository) setPostgres(ctx context.Context, order []string, last map[string]int64, now time.Time, updated map[string]bool) error {
	inv := make([]int64, len(order))
	for i, c := range order {
		inv[i] = last[c]
	}
	var codes []string
	if err := r.scanCodes(ctx, &codes, postgresSetInventories, order, inv, now); err != nil {
		return err
	}
	for _, c := range codes {
		updated[c] = true
	}
	return nil
}

// caseUpdate builds UPDATE products SET inventory = CASE code WHEN ? THEN ? ... END.
func caseUpdate(order []string, last map[string]int64, now time.Time, param string, returning bool) (string, []any) {
	var sb strings.Builder
	args := make([]any, 0, 3*len(order)+1)
	sb.WriteString("UPDATE products SET inventory = CASE code")
	for _, code := range order {
		sb.WriteString(" WHEN ? THEN ")
		sb.WriteString(param)
		args = append(args, code, last[code])
	}
	sb.WriteString(" ELSE inventory END, updated_at = ? WHERE code IN (")
	args = append(args, now)
	for i, code := range order {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("?")
		args = append(args, code)
	}
	sb.WriteString(")")
	if returning {
		sb.WriteString(" RETURNING code")
	}
	return sb.String(), args
}
