package orderstatus

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
)

// Statuses an order can have; FinalStatuses never change again.
var (
	Statuses      = []string{"pending", "paid", "shipped", "delivered", "cancelled"}
	FinalStatuses = []string{"delivered", "cancelled"}
)

// MaxIDLength is the longest order id (the id column's size).
const MaxIDLength = 64

// Order is a row of the shop's orders table.
type Order struct {
	ID        string    `gorm:"primaryKey;size:64"`
	Status    string    `gorm:"size:16;not null"`
	UpdatedAt time.Time `gorm:"not null"`
}

// TableName is orders.
func (Order) TableName() string { return "orders" }

// Migrate creates or updates the orders table.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&Order{}); err != nil {
		return fmt.Errorf("migrate orders: %w", consumer.ClassifyDatabaseError(err))
	}
	return nil
}

// CurrentStatuses returns the current status of each of the orders ids that exists, in one query.
func CurrentStatuses(ctx context.Context, tx *gorm.DB, ids []string) (map[string]string, error) {
	statuses := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return statuses, nil
	}
	var rows []Order
	if err := tx.WithContext(ctx).Select("id", "status").Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read orders: %w", consumer.ClassifyDatabaseError(err))
	}
	for _, o := range rows {
		statuses[o.ID] = o.Status
	}
	return statuses, nil
}

// SetStatus sets the status of the order id.
func SetStatus(ctx context.Context, tx *gorm.DB, id, status string, now time.Time) error {
	err := tx.WithContext(ctx).Model(&Order{}).Where("id = ?", id).
		Updates(map[string]any{"status": status, "updated_at": now}).Error
	if err != nil {
		return fmt.Errorf("set status of order %s: %w", id, consumer.ClassifyDatabaseError(err))
	}
	return nil
}
