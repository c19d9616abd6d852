package inventory

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Service is the business operation: set each product's inventory from a valid update.
// What makes an update valid is the Validator's; how rows are read and written is the
// Repository's.
type Service struct {
	now func() time.Time
}

// NewService returns the service.
func NewService() *Service { return &Service{now: time.Now} }

// SetInventories validates updates against the products that exist (one lookup) and
// applies the valid ones (one statement), both in tx. It returns one result per update:
// nil when applied, else a permanent consumer.ClassValidationFailed error listing every
// problem; an update with a problem changes nothing. A database error fails the batch
// (classified; the runtime narrows a permanent one down to its message).
func (s *Service) SetInventories(ctx context.Context, tx *gorm.DB, updates []*ProductUpdate) ([]error, error) {
	repo := NewRepository(tx)
	codes := make([]string, 0, len(updates))
	for _, u := range updates {
		if code, ok := CodeToLookUp(u); ok {
			codes = append(codes, code)
		}
	}
	existing, err := repo.ExistingCodes(ctx, codes)
	if err != nil {
		return nil, err
	}
	validator := NewValidator(func(code string) bool { return existing[code] })
	results := make([]error, len(updates))
	changes := make([]Change, 0, len(updates))
	owners := make([]int, 0, len(updates)) // changes[k] is updates[owners[k]]'s
	for i, u := range updates {
		c, err := validator.Validate(u)
		if err != nil {
			results[i] = err
			continue
		}
		changes = append(changes, c)
		owners = append(owners, i)
	}
	updated, err := repo.SetInventories(ctx, changes, s.now().UTC())
	if err != nil {
		return nil, err
	}
	// A product deleted since the lookup was not updated: its update does not exist now.
	for k, c := range changes {
		if !updated[c.Code] {
			delete(existing, c.Code)
			_, results[owners[k]] = validator.Validate(updates[owners[k]])
		}
	}
	return results, nil
}
