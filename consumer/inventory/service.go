package inventory

import (
	"context"
	"time"
)

// Service applies validated changes: it sets each product's inventory through the
// repository, all of a batch in one transaction.
type Service struct {
	repo *Repository
	now  func() time.Time
}

// NewService returns a service on repo.
func NewService(repo *Repository) *Service { return &Service{repo: repo, now: time.Now} }

// SetInventories applies changes in one transaction (last change of a code wins).
func (s *Service) SetInventories(ctx context.Context, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	return s.repo.Transaction(ctx, func(tx *Repository) error {
		_, err := tx.SetInventories(ctx, changes, s.now().UTC())
		return err
	})
}
