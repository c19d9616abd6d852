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

// Handler is the inventory.product-updates handler: decode -> validate -> set inventory.
type Handler struct {
	db      *gorm.DB
	repo    *Repository
	service *Service
}

// NewHandler returns the handler on db.
func NewHandler(db *gorm.DB) *Handler {
	repo := NewRepository(db)
	return &Handler{db: db, repo: repo, service: NewService(repo)}
}

// Migrate implements consumer.Migrator.
func (h *Handler) Migrate(ctx context.Context) error { return Migrate(ctx, h.db) }

// HandleBatch implements consumer.Handler: every message is decoded and validated on its
// own (one query looks up all product codes of the batch), then the valid changes are
// applied in one transaction. A transient database error fails the batch; if the database
// refuses the batch statement, the changes are applied one by one so that the refusal
// stays with its own message.
func (h *Handler) HandleBatch(ctx context.Context, msgs []*consumer.Message) ([]error, error) {
	results := make([]error, len(msgs))
	updates := make([]*ProductUpdate, len(msgs))
	var codes []string
	for i, m := range msgs {
		u, err := Decode(m.Value)
		if err != nil {
			results[i] = err
			continue
		}
		updates[i] = u
		if u.ProductCode != nil && *u.ProductCode != "" {
			codes = append(codes, *u.ProductCode)
		}
	}
	existing, err := h.repo.ExistingCodes(ctx, codes)
	if err != nil {
		return nil, err
	}
	exists := func(code string) bool { return existing[code] }
	var changes []Change
	var owners []int
	for i, u := range updates {
		if u == nil {
			continue
		}
		c, err := Validate(u, exists)
		if err != nil {
			results[i] = err
			continue
		}
		changes = append(changes, c)
		owners = append(owners, i)
	}
	err = h.service.SetInventories(ctx, changes)
	if err == nil || !consumer.IsPermanent(err) {
		return results, err
	}
	for k, c := range changes {
		if err := h.service.SetInventories(ctx, []Change{c}); err != nil {
			if !consumer.IsPermanent(err) {
				return nil, err
			}
			results[owners[k]] = err
		}
	}
	return results, nil
}
