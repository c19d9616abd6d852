// Package orderstatus is an example kafkasub handler, in its own module: a shop's order
// service produces {"order_id": "...", "status": "..."} to a topic, and the orders row with
// that id gets the status, unless the order is already delivered or cancelled. Importing
// the package registers HandlerName; kafkasub/main.go is the image's whole binary.
package orderstatus

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
)

// HandlerName is what a KafkaSubscription's spec.handler names to select this handler.
const HandlerName = "orderstatus.updates"

func init() {
	consumer.Register(HandlerName, func(d consumer.Deps) (consumer.Handler, error) {
		if d.DB == nil {
			return nil, errors.New("handler " + HandlerName + " needs a database")
		}
		return &Handler{db: d.DB}, nil
	})
}

// Handler applies a batch of status updates in the runtime's transaction: it decodes
// each message, reads the batch's orders once, and sets the status of each valid update.
type Handler struct {
	db *gorm.DB // for Migrate
}

// Migrate implements consumer.Migrator.
func (h *Handler) Migrate(ctx context.Context) error { return Migrate(ctx, h.db) }

// HandleBatch implements consumer.Handler.
func (h *Handler) HandleBatch(ctx context.Context, tx *gorm.DB, msgs []*consumer.Message) ([]error, error) {
	results := make([]error, len(msgs))
	updates := make([]*StatusUpdate, len(msgs))
	var ids []string
	for i, m := range msgs {
		if updates[i], results[i] = Decode(m.Value); results[i] == nil {
			if id, ok := IDToLookUp(updates[i]); ok {
				ids = append(ids, id)
			}
		}
	}
	statuses, err := CurrentStatuses(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	for i, u := range updates {
		if results[i] != nil {
			continue
		}
		if results[i] = Validate(u, statuses); results[i] != nil {
			continue
		}
		if err := SetStatus(ctx, tx, *u.OrderID, *u.Status, now); err != nil {
			return nil, err
		}
		statuses[*u.OrderID] = *u.Status // the next update of this order sees it
	}
	return results, nil
}
