// Package offsetstore keeps, in the subscription's own database, the last offset applied
// for each (consumer group, topic, partition). The runtime advances it in the same
// transaction as the handler's rows, as a compare-and-set, so a batch that another member
// (or an earlier life of this one) already applied changes nothing.
//
// A row also records the topic's ID, which a Kafka cluster gives a topic when it creates
// it: the offsets of a topic deleted and created again, or of the same topic name on
// another cluster, start over, so a row of another incarnation of the topic is no stored
// offset at all.
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
	Group string
	Topic string
	// TopicID is the cluster's ID of the topic ("" where the brokers predate topic IDs,
	// Kafka < 2.8: then every incarnation of the topic is the same to the store).
	TopicID   string
	Partition int32
}

func (k Key) String() string { return fmt.Sprintf("%s/%s/%d", k.Group, k.Topic, k.Partition) }

// row is the table's schema. Partition is a reserved word in MySQL, hence partition_number.
type row struct {
	ConsumerGroup   string    `gorm:"primaryKey;size:255"`
	Topic           string    `gorm:"primaryKey;size:255"`
	PartitionNumber int32     `gorm:"primaryKey;autoIncrement:false"`
	TopicID         string    `gorm:"size:64;not null;default:''"`
	LastOffset      int64     `gorm:"not null"`
	UpdatedAt       time.Time `gorm:"not null"`
}

// Store reads and advances stored offsets in one table.
type Store struct {
	table   string
	advance string // the compare-and-set within the topic's incarnation
	replace string // takes over a row of another incarnation
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
			" WHERE consumer_group = ? AND topic = ? AND partition_number = ? AND topic_id = ?" +
			" AND last_offset >= ? AND last_offset < ?",
		replace: "UPDATE " + table + " SET last_offset = ?, updated_at = ?, topic_id = ?" +
			" WHERE consumer_group = ? AND topic = ? AND partition_number = ? AND topic_id <> ?",
	}
}

// Table returns the store's table name.
func (s *Store) Table() string { return s.table }

// Migrate creates the table (or adds what is missing).
func (s *Store) Migrate(ctx context.Context, db *gorm.DB) error {
	return db.WithContext(ctx).Table(s.table).AutoMigrate(&row{})
}

// Load returns the stored offset of each partition of k's group and topic (k.Partition is
// not used); a partition without a row, or whose row is of another incarnation of the
// topic (another topic ID), is None.
func (s *Store) Load(ctx context.Context, db *gorm.DB, k Key, partitions []int32) (map[int32]int64, error) {
	out := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		out[p] = None
	}
	if len(partitions) == 0 {
		return out, nil
	}
	var rows []row
	err := db.WithContext(ctx).Table(s.table).
		Where("consumer_group = ? AND topic = ? AND topic_id = ? AND partition_number IN ?", k.Group, k.Topic, k.TopicID, partitions).
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
// no row yet (or a row of another incarnation of the topic) writes the row. The UPDATE
// takes the row's lock, so two members racing on a partition serialise here and the second
// finds the offset moved.
func (s *Store) Advance(ctx context.Context, tx *gorm.DB, k Key, floor, first, last int64, now time.Time) error {
	res := tx.WithContext(ctx).Exec(s.advance, last, now, k.Group, k.Topic, k.Partition, k.TopicID, floor, first)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 1 {
		return nil
	}
	if floor > None {
		return ErrMoved
	}
	// No row of this incarnation matched and any stored offset below first would do: the
	// row may be another incarnation's, or not exist.
	res = tx.WithContext(ctx).Exec(s.replace, last, now, k.TopicID, k.Group, k.Topic, k.Partition, k.TopicID)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 1 {
		return nil
	}
	res = tx.WithContext(ctx).Table(s.table).Clauses(clause.OnConflict{DoNothing: true}).Create(&row{
		ConsumerGroup: k.Group, Topic: k.Topic, PartitionNumber: k.Partition, TopicID: k.TopicID, LastOffset: last, UpdatedAt: now,
	})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return ErrMoved
	}
	return nil
}
