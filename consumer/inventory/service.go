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

// SetInventories applies changes in one transaction (last change of a code wins) and
// returns the codes it updated; a code that is not among them has no product.
func (s *Service) SetInventories(ctx context.Context, changes []Change) (map[string]bool, error) {
	return s.repo.SetInventories(ctx, changes, s.now().UTC())
}
