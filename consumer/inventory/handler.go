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

// Handler is the inventory.product-updates handler: the Kafka concerns only. It decodes
// each message, hands the decoded updates to the service in the runtime's transaction and
// maps the outcomes back onto the messages.
type Handler struct {
	db      *gorm.DB
	service inventorySetter
}

// inventorySetter is what the handler hands updates to: the Service (a test's fake).
type inventorySetter interface {
	SetInventories(ctx context.Context, tx *gorm.DB, updates []*ProductUpdate) ([]error, error)
}

// NewHandler returns the handler; db is for Migrate (batches run in the runtime's
// transaction).
func NewHandler(db *gorm.DB) *Handler {
	return &Handler{db: db, service: NewService()}
}

// Migrate implements consumer.Migrator.
func (h *Handler) Migrate(ctx context.Context) error { return Migrate(ctx, h.db) }

// HandleBatch implements consumer.Handler: a message that does not decode gets its decode
// error (permanent), every other one the service's outcome for its update.
func (h *Handler) HandleBatch(ctx context.Context, tx *gorm.DB, msgs []*consumer.Message) ([]error, error) {
	results := make([]error, len(msgs))
	updates := make([]*ProductUpdate, 0, len(msgs))
	from := make([]int, 0, len(msgs)) // updates[k] is msgs[from[k]]'s
	for i, m := range msgs {
		u, err := Decode(m.Value)
		if err != nil {
			results[i] = err
			continue
		}
		updates = append(updates, u)
		from = append(from, i)
	}
	outcomes, err := h.service.SetInventories(ctx, tx, updates)
	if err != nil {
		return nil, err
	}
	for k, outcome := range outcomes {
		results[from[k]] = outcome
	}
	return results, nil
}
