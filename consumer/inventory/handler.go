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

// HandleBatch implements consumer.Handler. Every message is decoded and validated on its
// own; the valid changes of the batch are applied in one statement (one transaction),
// which also tells which product codes exist, so the common case is one round trip per
// batch. "Product code X does not exist" is reported for a change the update did not
// find, and, looked up in one query, for messages that are invalid for other reasons too,
// so that every problem of a message is listed. A transient database error fails the
// batch; if the database refuses the batch statement, the changes are applied one by one
// so that the refusal stays with its own message.
func (h *Handler) HandleBatch(ctx context.Context, msgs []*consumer.Message) ([]error, error) {
	results := make([]error, len(msgs))
	updates := make([]*ProductUpdate, len(msgs))
	for i, m := range msgs {
		updates[i], results[i] = Decode(m.Value)
	}
	assumeExists := func(string) bool { return true }
	var changes []Change
	var owners, recheck []int
	for i, u := range updates {
		if u == nil {
			continue
		}
		c, err := Validate(u, assumeExists)
		if err != nil {
			recheck = append(recheck, i)
			continue
		}
		changes = append(changes, c)
		owners = append(owners, i)
	}
	if len(recheck) > 0 {
		var codes []string
		for _, i := range recheck {
			if c := updates[i].ProductCode; c != nil && *c != "" {
				codes = append(codes, *c)
			}
		}
		existing, err := h.repo.ExistingCodes(ctx, codes)
		if err != nil {
			return nil, err
		}
		for _, i := range recheck {
			_, results[i] = Validate(updates[i], func(code string) bool { return existing[code] })
		}
	}
	missing := func(string) bool { return false }
	updated, err := h.service.SetInventories(ctx, changes)
	if err != nil {
		if !consumer.IsPermanent(err) {
			return nil, err
		}
		for k, c := range changes {
			up, err := h.service.SetInventories(ctx, []Change{c})
			switch {
			case err != nil && !consumer.IsPermanent(err):
				return nil, err
			case err != nil:
				results[owners[k]] = err
			case !up[c.Code]:
				_, results[owners[k]] = Validate(updates[owners[k]], missing)
			}
		}
		return results, nil
	}
	for k, c := range changes {
		if !updated[c.Code] {
			_, results[owners[k]] = Validate(updates[owners[k]], missing)
		}
	}
	return results, nil
}
