package inventory

import (
	"context"
	"time"
)

// Service is the business operation: set each product's inventory from a valid update.
// Validation is the model's (Validate); the service only gathers what it needs to ask.
type Service struct {
	now func() time.Time
}

// NewService returns the service.
func NewService() *Service { return &Service{now: time.Now} }

// SetInventories validates every decoded update (a nil update already has its error in
// results) and applies the valid ones through repo in one statement; results[i] gets the
// validation error of updates[i]. An update whose product the statement did not find gets
// "Product code ... does not exist". Codes of updates that are invalid for other reasons
// are looked up too, so that every problem of a message is listed. A database error is
// returned for the batch (the runtime narrows a permanent one down to its message).
func (s *Service) SetInventories(ctx context.Context, repo *Repository, updates []*ProductUpdate, results []error) error {
	assumeExists := func(string) bool { return true }
	var changes []Change
	var owners, invalid []int
	for i, u := range updates {
		if u == nil {
			continue
		}
		c, err := Validate(u, assumeExists)
		if err != nil {
			invalid = append(invalid, i)
			results[i] = err
			continue
		}
		changes = append(changes, c)
		owners = append(owners, i)
	}
	if codes := lookupCodes(updates, invalid); len(codes) > 0 {
		existing, err := repo.ExistingCodes(ctx, codes)
		if err != nil {
			return err
		}
		for _, i := range invalid {
			_, results[i] = Validate(updates[i], func(code string) bool { return existing[code] })
		}
	}
	updated, err := repo.SetInventories(ctx, changes, s.now().UTC())
	if err != nil {
		return err
	}
	missing := func(string) bool { return false }
	for k, c := range changes {
		if !updated[c.Code] {
			_, results[owners[k]] = Validate(updates[owners[k]], missing)
		}
	}
	return nil
}

// lookupCodes returns the product codes of the invalid updates that can be looked up (a
// code that breaks a format rule names no row).
func lookupCodes(updates []*ProductUpdate, invalid []int) []string {
	var codes []string
	for _, i := range invalid {
		if c := updates[i].ProductCode; c != nil && ValidCodeFormat(*c) {
			codes = append(codes, *c)
		}
	}
	return codes
}
