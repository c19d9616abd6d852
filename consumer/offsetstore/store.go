// Package offsetstore keeps, in the subscription's own database, the last offset applied
// for each (consumer group, topic, partition). The runtime advances it in the same
// transaction as the handler's rows, as a compare-and-set, so a batch that another member
// (or an earlier life of this one) already applied changes nothing.
package offsetstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DefaultTable is the table the store uses unless the configuration names another.
const DefaultTable = "kafkasub_offsets"

// None is the stored offset of a partition that has no row yet.
const None int64 = -1

// ErrMoved means the stored offset is not in the range the caller expected: another
// member of the group applied messages of the partition meanwhile, or the store is behind
// the caller's position. Nothing was written; Load tells where the partition stands.
var ErrMoved = errors.New("the stored offset moved")

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidTable reports whether name can be used as the store's table (a plain SQL
// identifier, so it needs no quoting on any driver).
func ValidTable(name string) bool { return tableName.MatchString(name) }

// Key names one partition of one consumer group.
type Key struct {
	Group     string
	Topic     string
	Partition int32
}

func (k Key) String() string { return fmt.Sprintf("%s/%s/%d", k.Group, k.Topic, k.Partition) }

// row is the table's schema. Partition is a reserved word in MySQL, hence partition_number.
type row struct {
	ConsumerGroup   string    `gorm:"primaryKey;size:255"`
	Topic           string    `gorm:"primaryKey;size:255"`
	PartitionNumber int32     `gorm:"primaryKey;autoIncrement:false"`
	LastOffset      int64     `gorm:"not null"`
	UpdatedAt       time.Time `gorm:"not null"`
}

// Store reads and advances stored offsets in one table.
type Store struct {
	table   string
	advance string
}

// New returns a store on table (DefaultTable when empty). It panics on a name ValidTable
// refuses; configuration validation rejects those first.
func New(table string) *Store {
	if table == "" {
		table = DefaultTable
	}
	if !ValidTable(table) {
		panic(fmt.Sprintf("offsetstore: invalid table name %q", table))
	}
	return &Store{
		table: table,
		advance: "UPDATE " + table + " SET last_offset = ?, updated_at = ?" +
			" WHERE consumer_group = ? AND topic = ? AND partition_number = ?" +
			" AND last_offset >= ? AND last_offset < ?",
	}
}

// Table returns the store's table name.
func (s *Store) Table() string { return s.table }

// Migrate creates the table (or adds what is missing).
func (s *Store) Migrate(ctx context.Context, db *gorm.DB) error {
	return db.WithContext(ctx).Table(s.table).AutoMigrate(&row{})
}

// Load returns the stored offset of each partition of group and topic; a partition
// without a row is None.
func (s *Store) Load(ctx context.Context, db *gorm.DB, group, topic string, partitions []int32) (map[int32]int64, error) {
	out := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		out[p] = None
	}
	if len(partitions) == 0 {
		return out, nil
	}
	var rows []row
	err := db.WithContext(ctx).Table(s.table).
		Where("consumer_group = ? AND topic = ? AND partition_number IN ?", group, topic, partitions).
		Find(&rows).Error
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.PartitionNumber] = r.LastOffset
	}
	return out, nil
}

// Advance sets the stored offset of k to last inside tx, provided it is now at least
// floor and below first: floor is one below the lowest offset the caller covers (every
// offset from floor+1 to first-1 is settled or does not exist), first is the first message
// the caller applies. Otherwise it returns ErrMoved and writes nothing. floor None with
// no row yet inserts the row. The UPDATE takes the row's lock, so two members racing on a
// partition serialise here and the second finds the offset moved.
func (s *Store) Advance(ctx context.Context, tx *gorm.DB, k Key, floor, first, last int64, now time.Time) error {
	res := tx.WithContext(ctx).Exec(s.advance, last, now, k.Group, k.Topic, k.Partition, floor, first)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 1 {
		return nil
	}
	if floor > None {
		return ErrMoved
	}
	// No row matched and any stored offset below first would do: the row may not exist.
	res = tx.WithContext(ctx).Table(s.table).Clauses(clause.OnConflict{DoNothing: true}).Create(&row{
		ConsumerGroup: k.Group, Topic: k.Topic, PartitionNumber: k.Partition, LastOffset: last, UpdatedAt: now,
	})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return ErrMoved
	}
	return nil
}
