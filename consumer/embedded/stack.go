// Package embedded is the stack `kafkasub demo` and `kafkasub dev` run on a machine with
// nothing but Go: an in-process Kafka-protocol broker (franz-go's kfake) holding the
// subscription's topic and its dead-letter topic, and a SQLite database file (pure Go),
// migrated and seeded like `db:create` + `db:reset`. The consumer that runs on it is the
// real one, started through the same configuration contract as a pod (consumer.Config
// written to a file and read back with consumer.Load).
package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kfake"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/dbfault"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// Defaults of the embedded stack.
const (
	// DefaultListenAddr is where `kafkasub dev` listens unless told otherwise, so that
	// `kafkasub produce` and `kafkasub dlq` reach it without flags.
	DefaultListenAddr = "127.0.0.1:9092"
	// DeadLetterSuffix is appended to the topic to name its dead-letter topic.
	DeadLetterSuffix = ".dlq"
	// ConsumerGroup is the group the embedded consumer joins.
	ConsumerGroup = "kafkasub-embedded"
	// Subscription is the subscription name the embedded consumer writes into events and
	// dead-letter headers.
	Subscription = "embedded/inventory"
	// DatabaseFileName is the SQLite file created in the stack's directory when no
	// database path is given.
	DatabaseFileName = "inventory.sqlite3"
)

// DefaultDeadLetterTopic is the dead-letter topic of the inventory topic.
const DefaultDeadLetterTopic = inventory.Topic + DeadLetterSuffix

// Options choose where the stack listens and keeps its files. The zero value is a broker
// on a random loopback port and a database in a new temporary directory.
type Options struct {
	// ListenAddr is the broker's host:port; "" picks a free port on 127.0.0.1. The broker
	// advertises the address it listens on, so clients must be able to reach it there.
	ListenAddr string
	// Dir holds the database (unless DatabasePath says otherwise) and the consumer's
	// configuration file; "" creates a temporary directory that Close removes.
	Dir string
	// DatabasePath is the SQLite file; "" is DatabaseFileName in Dir. An existing file is
	// migrated and seeded again (seeding leaves existing products alone).
	DatabasePath string
	// Partitions of the topic and the dead-letter topic; 0 means 1.
	Partitions int32
}

// Stack is a running embedded broker and a migrated, seeded SQLite database.
type Stack struct {
	// Brokers are the broker addresses (host:port) to give clients.
	Brokers []string
	// Topic is the topic the inventory system produces to; DeadLetterTopic receives what
	// the consumer cannot apply.
	Topic           string
	DeadLetterTopic string
	// Dir is the stack's working directory; DatabasePath the SQLite file; DatabaseDSN the
	// DSN the consumer opens it with.
	Dir          string
	DatabasePath string
	DatabaseDSN  string
	// Products are the seeded products as stored, ordered by id (Products[0] is the
	// walk-through's Product.first).
	Products []inventory.Product

	cluster *kfake.Cluster
	db      *gorm.DB
	gate    *dbfault.Gate
	tempDir bool
}

// Start starts the broker and prepares the database. Close stops and removes what Start
// created.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	s := &Stack{Topic: inventory.Topic, DeadLetterTopic: DefaultDeadLetterTopic, Dir: opts.Dir, gate: dbfault.NewGate()}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "kafkasub-"); err != nil {
			return nil, fmt.Errorf("create a working directory: %w", err)
		}
		s.tempDir = true
	} else if err = os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the working directory: %w", err)
	}

	partitions := opts.Partitions
	if partitions <= 0 {
		partitions = 1
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("kafkasub-embedded"),
		kfake.SeedTopics(partitions, s.Topic, s.DeadLetterTopic),
	}
	if opts.ListenAddr != "" {
		addr := opts.ListenAddr
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("listen address %q is not host:port: %w", addr, err)
		}
		kopts = append(kopts, kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, addr)
		}))
	}
	if s.cluster, err = kfake.NewCluster(kopts...); err != nil {
		return nil, fmt.Errorf("start the embedded Kafka broker: %w", err)
	}
	s.Brokers = s.cluster.ListenAddrs()

	s.DatabasePath = opts.DatabasePath
	if s.DatabasePath == "" {
		s.DatabasePath = filepath.Join(s.Dir, DatabaseFileName)
	}
	if s.DatabasePath, err = filepath.Abs(s.DatabasePath); err != nil {
		return nil, err
	}
	if err = os.MkdirAll(filepath.Dir(s.DatabasePath), 0o755); err != nil {
		return nil, fmt.Errorf("create the database directory: %w", err)
	}
	// WAL lets a reader (the demo, a person's sqlite3 shell) look while the consumer writes.
	s.DatabaseDSN = "file:" + s.DatabasePath + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)"
	if s.db, err = consumer.OpenDatabase(consumer.DriverSQLite, s.DatabaseDSN); err != nil {
		return nil, fmt.Errorf("database %s: %w", s.DatabasePath, err)
	}
	if err = inventory.Migrate(ctx, s.db); err != nil {
		return nil, fmt.Errorf("database %s: %w", s.DatabasePath, err)
	}
	if s.Products, err = inventory.Seed(ctx, s.db); err != nil {
		return nil, fmt.Errorf("database %s: %w", s.DatabasePath, err)
	}
	return s, nil
}

// DB is a database handle of the stack's own, apart from the consumer's: what a person
// looks through in a console. It stays reachable when the consumer's database is made
// unreachable.
func (s *Stack) DB() *gorm.DB { return s.db }

// Product returns the product with code as stored now.
func (s *Stack) Product(ctx context.Context, code string) (inventory.Product, error) {
	var p inventory.Product
	err := s.db.WithContext(ctx).Where("code = ?", code).Take(&p).Error
	return p, err
}

// ConsumerConfig renders the consumer configuration for the stack: the same contract the
// operator renders into a pod's ConfigMap. The database DSN is not part of it; it comes
// from Getenv, as a pod's comes from its environment.
func (s *Stack) ConsumerConfig() *consumer.Config {
	return &consumer.Config{
		Subscription: Subscription,
		Handler:      inventory.HandlerName,
		Kafka: consumer.KafkaConfig{
			BootstrapServers: append([]string(nil), s.Brokers...),
			Topic:            s.Topic,
			ConsumerGroup:    ConsumerGroup,
			InitialOffset:    consumer.OffsetEarliest,
			ClientID:         "kafkasub-embedded",
		},
		DeadLetter:  consumer.DeadLetterConfig{Topic: s.DeadLetterTopic},
		Database:    consumer.DatabaseConfig{Driver: consumer.DriverSQLite, Migrate: true},
		HealthAddr:  "127.0.0.1:0",
		MetricsAddr: "127.0.0.1:0",
	}
}

// Getenv is the environment the embedded consumer sees: the database DSN under
// consumer.EnvDatabaseDSN, nothing else.
func (s *Stack) Getenv(name string) string {
	if name == consumer.EnvDatabaseDSN {
		return s.DatabaseDSN
	}
	return ""
}

// WriteConsumerConfig writes cfg to the stack's directory as consumer.ConfigFileName and
// returns its path.
func (s *Stack) WriteConsumerConfig(cfg *consumer.Config) (string, error) {
	data, err := cfg.Marshal()
	if err != nil {
		return "", fmt.Errorf("render the consumer config: %w", err)
	}
	path := filepath.Join(s.Dir, consumer.ConfigFileName)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write the consumer config: %w", err)
	}
	return path, nil
}

// SetDatabaseDown makes the database unreachable for the consumer (true), for real: its
// connections fail as dropped connections do (dbfault.Gate), until SetDatabaseDown(false).
// The stack's own handle (DB) is not affected.
func (s *Stack) SetDatabaseDown(down bool) { s.gate.SetDown(down) }

// DatabaseDown reports whether the database is unreachable for the consumer.
func (s *Stack) DatabaseDown() bool { return s.gate.Down() }

// NewConsumer writes cfg (ConsumerConfig when nil) to the stack's directory, loads it back
// with consumer.Load and the stack's environment, exactly as a pod does, and builds the
// consumer with opts, its database connections behind the stack's gate (SetDatabaseDown).
// Start it with Run. It returns the path of the configuration file.
func (s *Stack) NewConsumer(cfg *consumer.Config, opts ...consumer.Option) (*consumer.Consumer, string, error) {
	if cfg == nil {
		cfg = s.ConsumerConfig()
	}
	path, err := s.WriteConsumerConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	loaded, err := consumer.Load(path, s.Getenv)
	if err != nil {
		return nil, "", err
	}
	opts = append([]consumer.Option{consumer.WithDatabaseOptions(consumer.WithConnector(s.gate.Wrap))}, opts...)
	c, err := consumer.New(loaded, opts...)
	if err != nil {
		return nil, "", err
	}
	return c, path, nil
}

// Keep makes Close leave the stack's directory in place (with the database, the consumer
// configuration and whatever else was written there).
func (s *Stack) Keep() { s.tempDir = false }

// Close stops the broker, closes the database and removes a temporary directory.
func (s *Stack) Close() error {
	var errs []error
	if s.cluster != nil {
		s.cluster.Close()
		s.cluster = nil
	}
	if s.db != nil {
		if sqlDB, err := s.db.DB(); err == nil {
			errs = append(errs, sqlDB.Close())
		}
		s.db = nil
	}
	if s.tempDir && s.Dir != "" {
		errs = append(errs, os.RemoveAll(s.Dir))
		s.tempDir = false
	}
	return errors.Join(errs...)
}
