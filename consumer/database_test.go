package consumer_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/consumertest"
	"github.com/kafkasub/kafkasub/consumer/dbfault"
)

func wantTransient(t *testing.T, err error) {
	t.Helper()
	err = consumer.ClassifyDatabaseError(err)
	if err == nil || consumer.IsPermanent(err) || consumer.ClassOf(err) != consumer.ClassDatabaseUnavailable {
		t.Fatalf("error %v classified %q (permanent %v), want transient %s", err, consumer.ClassOf(err), consumer.IsPermanent(err), consumer.ClassDatabaseUnavailable)
	}
}

func wantPermanent(t *testing.T, err error) {
	t.Helper()
	err = consumer.ClassifyDatabaseError(err)
	if err == nil || !consumer.IsPermanent(err) || consumer.ClassOf(err) != consumer.ClassDatabaseError {
		t.Fatalf("error %v classified %q (permanent %v), want permanent %s", err, consumer.ClassOf(err), consumer.IsPermanent(err), consumer.ClassDatabaseError)
	}
}

func TestARefusedPostgreSQLConnectionIsTransient(t *testing.T) {
	// Port 1 on loopback: nothing listens, the connection is refused for real.
	db, err := consumer.OpenDatabase(consumer.DriverPostgres, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	wantTransient(t, db.Exec("SELECT 1").Error)
}

func TestAClosedGateIsTransientAndAnOpenOneWorks(t *testing.T) {
	gate := dbfault.NewGate()
	db, err := consumer.OpenDatabase(consumer.DriverSQLite, consumertest.SQLiteDSN(t), consumer.WithConnector(gate.Wrap))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("CREATE TABLE x (a int)").Error; err != nil {
		t.Fatal(err)
	}
	gate.SetDown(true)
	wantTransient(t, db.Exec("INSERT INTO x VALUES (1)").Error)
	if err := consumer.PingDatabase(context.Background(), db, time.Second); !consumer.IsTransient(err) {
		t.Fatalf("ping while down: %v, want a transient error", err)
	}
	gate.SetDown(false)
	if err := db.Exec("INSERT INTO x VALUES (1)").Error; err != nil {
		t.Fatalf("insert after the gate opened: %v", err)
	}
}

func TestALockedSQLiteDatabaseIsTransient(t *testing.T) {
	dsn := consumertest.SQLiteDSN(t) + "&_pragma=busy_timeout(0)"
	holder, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.Exec("CREATE TABLE x (a int)"); err != nil {
		t.Fatal(err)
	}
	conn, err := holder.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = conn.ExecContext(context.Background(), "ROLLBACK") }()
	db, err := consumer.OpenDatabase(consumer.DriverSQLite, dsn)
	if err != nil {
		t.Fatal(err)
	}
	wantTransient(t, db.Exec("INSERT INTO x VALUES (1)").Error)
}

func TestAStatementErrorIsPermanent(t *testing.T) {
	db, err := consumer.OpenDatabase(consumer.DriverSQLite, consumertest.SQLiteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	wantPermanent(t, db.Exec("SELEC nonsense").Error)
	wantPermanent(t, db.Exec("INSERT INTO no_such_table VALUES (1)").Error)
}

func TestPostgreSQLErrorsAreClassified(t *testing.T) {
	db, err := consumer.OpenDatabase(consumer.DriverPostgres, consumertest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a unique violation is permanent", func(t *testing.T) {
		if err := db.Exec("CREATE TABLE u (a int primary key); INSERT INTO u VALUES (1)").Error; err != nil {
			t.Fatal(err)
		}
		wantPermanent(t, db.Exec("INSERT INTO u VALUES (1)").Error)
	})
	t.Run("a statement timeout is transient", func(t *testing.T) {
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SET LOCAL statement_timeout = 50").Error; err != nil {
				return err
			}
			return tx.Exec("SELECT pg_sleep(5)").Error
		})
		wantTransient(t, err)
	})
	t.Run("a context deadline is transient", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		wantTransient(t, db.WithContext(ctx).Exec("SELECT pg_sleep(5)").Error)
	})
}

func TestClassifyKeepsAnExistingClassification(t *testing.T) {
	p := consumer.Permanent(consumer.ClassValidationFailed, errors.New("x"))
	if consumer.ClassifyDatabaseError(p) != p {
		t.Fatal("a classified error must be returned as it is")
	}
	if consumer.ClassifyDatabaseError(nil) != nil {
		t.Fatal("nil must stay nil")
	}
}

// TestSQLiteGetsAWriteAheadLogUnlessTheDSNSaysOtherwise: the runtime's SQLite defaults
// (WAL, synchronous NORMAL, a busy timeout) apply where the DSN sets none, and a DSN's own
// pragma wins.
func TestSQLiteGetsAWriteAheadLogUnlessTheDSNSaysOtherwise(t *testing.T) {
	for _, tc := range []struct {
		name, extra          string
		journal, synchronous string
	}{
		{"defaults", "", "wal", "1"},
		{"the DSN's synchronous", "?_pragma=synchronous(FULL)", "wal", "2"},
		{"the DSN's journal mode", "?_pragma=journal_mode(DELETE)", "delete", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := "file:" + filepath.Join(t.TempDir(), "pragmas.sqlite3") + tc.extra
			db := consumertest.OpenDatabase(t, consumer.DriverSQLite, dsn)
			var journal, synchronous string
			if err := db.Raw("PRAGMA journal_mode").Scan(&journal).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Raw("PRAGMA synchronous").Scan(&synchronous).Error; err != nil {
				t.Fatal(err)
			}
			var tempStore, cacheSize, checkpoint string
			if err := db.Raw("PRAGMA temp_store").Scan(&tempStore).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Raw("PRAGMA cache_size").Scan(&cacheSize).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Raw("PRAGMA wal_autocheckpoint").Scan(&checkpoint).Error; err != nil {
				t.Fatal(err)
			}
			if journal != tc.journal || synchronous != tc.synchronous || tempStore != "2" || cacheSize != "-32000" || checkpoint != "40000" {
				t.Fatalf("journal_mode %s, synchronous %s, temp_store %s, cache_size %s, wal_autocheckpoint %s; want %s, %s, 2 (MEMORY), -32000, 40000",
					journal, synchronous, tempStore, cacheSize, checkpoint, tc.journal, tc.synchronous)
			}
		})
	}
}

// A consumer of many partitions runs as many transactions at once. The pool keeps their
// connections open between batches: with database/sql's default of two idle connections,
// nearly every batch closed one and opened another (a PostgreSQL server process,
// authentication, the prepared statements again), which showed as a p99 latency of
// 100-150 ms at 1,000 msgs/s.
func TestConcurrentTransactionsKeepTheirPostgreSQLConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
		want int
	}{
		{"default", 0, consumer.DefaultMaxConnections},
		{"database.maxConnections", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := consumertest.OpenDatabase(t, consumer.DriverPostgres, consumertest.PostgresDSN(t), consumer.WithMaxConnections(tc.max))
			if err := db.Exec("CREATE TABLE pool_check (id int PRIMARY KEY, n int)").Error; err != nil {
				t.Fatal(err)
			}
			const workers, rounds = 12, 20
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := range rounds {
						err := db.Transaction(func(tx *gorm.DB) error {
							if err := tx.Exec("INSERT INTO pool_check VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n", w, r).Error; err != nil {
								return err
							}
							return tx.Exec("SELECT pg_sleep(0.002)").Error
						})
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			sqlDB, err := db.DB()
			if err != nil {
				t.Fatal(err)
			}
			st := sqlDB.Stats()
			if st.MaxOpenConnections != tc.want || st.OpenConnections > tc.want {
				t.Errorf("pool of %d open connections, at most %d; want at most %d", st.OpenConnections, st.MaxOpenConnections, tc.want)
			}
			if st.MaxIdleClosed != 0 || st.OpenConnections != tc.want {
				t.Errorf("%d connections closed for the idle limit, %d open after %d transactions in %d goroutines; want 0 closed and %d kept open",
					st.MaxIdleClosed, st.OpenConnections, workers*rounds, workers, tc.want)
			}
		})
	}
}

// The health ping shares the pool: while every connection is in a transaction it waits for
// one, and running out of time then says nothing about the database (the batches report
// it). A database that refuses connections is down, and a free pool pings at once.
func TestAPingThatWaitedForTheFullPoolSaysNothing(t *testing.T) {
	ctx := context.Background()
	db := consumertest.OpenDatabase(t, consumer.DriverPostgres, consumertest.PostgresDSN(t), consumer.WithMaxConnections(1))
	tx := db.Begin()
	if err := tx.Exec("SELECT 1").Error; err != nil {
		t.Fatal(err)
	}
	if up, known := consumer.PingDatabaseState(ctx, db, 300*time.Millisecond); known {
		t.Errorf("ping with the only connection in a transaction: up %t, known; want unknown", up)
	}
	if err := tx.Commit().Error; err != nil {
		t.Fatal(err)
	}
	if up, known := consumer.PingDatabaseState(ctx, db, 5*time.Second); !up || !known {
		t.Errorf("ping with a free connection: up %t, known %t; want up", up, known)
	}
	down, err := consumer.OpenDatabase(consumer.DriverPostgres, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=5",
		consumer.WithMaxConnections(1))
	if err != nil {
		t.Fatal(err)
	}
	if up, known := consumer.PingDatabaseState(ctx, down, 5*time.Second); up || !known {
		t.Errorf("ping of a refused database: up %t, known %t; want down", up, known)
	}
}
