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

// SetInventories applies the valid updates in tx and returns one result per update: nil
// when applied, else a permanent consumer.ClassValidationFailed error listing every
// problem; an update with a problem changes nothing. A database error fails the batch
// (classified; the runtime narrows a permanent one down to its message).
//
// Whether a product exists is asked of the database once per code: the updates that pass
// every other rule are applied in one statement, which reports the products it found
// (an update of a product it did not find changed nothing); one lookup answers for the
// codes of the other updates, so that every problem of a message is listed. A batch of
// valid updates is one statement.
func (s *Service) SetInventories(ctx context.Context, tx *gorm.DB, updates []*ProductUpdate) ([]error, error) {
	repo := NewRepository(tx)
	applied := make([]bool, len(updates))
	changes := make([]Change, 0, len(updates))
	for i, u := range updates {
		if c, ok := Candidate(u); ok {
			changes = append(changes, c)
			applied[i] = true // until the statement does not find its product
		}
	}
	existing, err := repo.SetInventories(ctx, changes, s.now().UTC())
	if err != nil {
		return nil, err
	}
	answered := make(map[string]bool, len(changes))
	for _, c := range changes {
		answered[c.Code] = true
	}
	var codes []string
	for i, u := range updates {
		if code, ok := CodeToLookUp(u); ok && !applied[i] && !answered[code] {
			codes = append(codes, code)
		}
	}
	if len(codes) > 0 {
		found, err := repo.ExistingCodes(ctx, codes)
		if err != nil {
			return nil, err
		}
		for code := range found {
			existing[code] = true
		}
	}
	validator := NewValidator(func(code string) bool { return existing[code] })
	results := make([]error, len(updates))
	for i, u := range updates {
		if applied[i] && existing[*u.ProductCode] {
			continue
		}
		_, results[i] = validator.Validate(u)
	}
	return results, nil
}
