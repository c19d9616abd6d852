package inventory

import (
	"context"
	"fmt"
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

// ExistingCodes returns which of codes have a product.
func (r *Repository) ExistingCodes(ctx context.Context, codes []string) (map[string]bool, error) {
	found := make(map[string]bool, len(codes))
	if len(codes) == 0 {
		return found, nil
	}
	var rows []string
	if err := r.db.WithContext(ctx).Model(&Product{}).Where("code IN ?", codes).Pluck("code", &rows).Error; err != nil {
		return nil, fmt.Errorf("look up product codes: %w", consumer.ClassifyDatabaseError(err))
	}
	for _, c := range rows {
		found[c] = true
	}
	return found, nil
}

// SetInventories sets the inventory of each change's product in one statement. When a
// code appears more than once the last change wins (messages are applied in order). It
// returns how many products were updated.
func (r *Repository) SetInventories(ctx context.Context, changes []Change, now time.Time) (int64, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	last := make(map[string]int64, len(changes))
	order := make([]string, 0, len(changes))
	for _, c := range changes {
		if _, seen := last[c.Code]; !seen {
			order = append(order, c.Code)
		}
		last[c.Code] = c.Inventory
	}
	param := "?"
	switch r.db.Name() {
	case "postgres":
		param = "CAST(? AS BIGINT)"
	case "mysql":
		param = "CAST(? AS SIGNED)"
	}
	// One portable statement: UPDATE products SET inventory = CASE code WHEN ... END.
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
	res := r.db.WithContext(ctx).Exec(sb.String(), args...)
	if res.Error != nil {
		return 0, fmt.Errorf("set inventories: %w", consumer.ClassifyDatabaseError(res.Error))
	}
	return res.RowsAffected, nil
}
