package inventory

import (
	"context"
	"errors"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
)

func init() {
	consumer.Register(HandlerName, func(d consumer.Deps) (consumer.Handler, error) {
		if d.DB == nil {
			return nil, errors.New("handler " + HandlerName + " needs a database")
		}
		return NewHandler(d.DB), nil
	})
}

// Handler is the inventory.product-updates handler. It holds the Kafka concerns only:
// it decodes each message and hands the batch to the service, which does the rest in the
// transaction the runtime gives it.
type Handler struct {
	db      *gorm.DB
	service *Service
}

// NewHandler returns the handler on db (used for migrations; batches run in the
// runtime's transaction).
func NewHandler(db *gorm.DB) *Handler {
	return &Handler{db: db, service: NewService()}
}

// Migrate implements consumer.Migrator.
func (h *Handler) Migrate(ctx context.Context) error { return Migrate(ctx, h.db) }

// HandleBatch implements consumer.Handler: a message that does not decode is dead-lettered
// with the reason; the rest go to the service in the batch's transaction.
func (h *Handler) HandleBatch(ctx context.Context, tx *gorm.DB, msgs []*consumer.Message) ([]error, error) {
	updates := make([]*ProductUpdate, len(msgs))
	results := make([]error, len(msgs))
	for i, m := range msgs {
		updates[i], results[i] = Decode(m.Value)
	}
	if err := h.service.SetInventories(ctx, NewRepository(tx), updates, results); err != nil {
		return nil, err
	}
	return results, nil
}
