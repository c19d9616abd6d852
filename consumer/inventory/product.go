package inventory

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/kafkasub/kafkasub/consumer"
)

// HandlerName is the name subscriptions use to select this handler.
const HandlerName = "inventory.product-updates"

// Topic is the topic the Inventory Management system produces to.
const Topic = "inventory_management_product_updates"

// Product is a row of the e-commerce database's products table.
type Product struct {
	ID        uint      `gorm:"primaryKey"`
	Code      string    `gorm:"size:64;not null;uniqueIndex"` // size: MaxCodeLength
	Name      string    `gorm:"size:255;not null"`
	Inventory int64     `gorm:"not null;default:0"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`
}

// TableName is products.
func (Product) TableName() string { return "products" }

// Migrate creates or updates the products table and its unique index on code.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&Product{}); err != nil {
		return fmt.Errorf("migrate products: %w", consumer.ClassifyDatabaseError(err))
	}
	return nil
}

// SeedProducts are the products Seed creates: a small catalogue to try the walk-through on.
var SeedProducts = []Product{
	{Code: "KB-MECH-001", Name: "Mechanical keyboard", Inventory: 10},
	{Code: "MS-WL-002", Name: "Wireless mouse", Inventory: 42},
	{Code: "MN-27-003", Name: "27-inch monitor", Inventory: 7},
	{Code: "HP-NC-004", Name: "Noise-cancelling headphones", Inventory: 15},
	{Code: "WC-HD-005", Name: "HD webcam", Inventory: 0},
}

// Seed inserts SeedProducts, leaving alone any product whose code already exists (so a
// second seed does not reset inventories), and returns the seeded products as stored,
// ordered by id.
func Seed(ctx context.Context, db *gorm.DB) ([]Product, error) {
	codes := make([]string, len(SeedProducts))
	for i, p := range SeedProducts {
		codes[i] = p.Code
	}
	if err := Insert(ctx, db, SeedProducts); err != nil {
		return nil, err
	}
	var out []Product
	if err := db.WithContext(ctx).Where("code IN ?", codes).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read seeded products: %w", consumer.ClassifyDatabaseError(err))
	}
	return out, nil
}

// Insert adds products in batches, skipping codes that exist already.
func Insert(ctx context.Context, db *gorm.DB, products []Product) error {
	if len(products) == 0 {
		return nil
	}
	rows := make([]Product, len(products))
	copy(rows, products)
	for i := range rows {
		rows[i].ID = 0
	}
	err := db.WithContext(ctx).
		Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "code"}}, DoNothing: true}).
		CreateInBatches(rows, 500).Error
	if err != nil {
		return fmt.Errorf("insert products: %w", consumer.ClassifyDatabaseError(err))
	}
	return nil
}

// MaxCodeLength is the longest product code, in characters (the code column's size).
const MaxCodeLength = 64
