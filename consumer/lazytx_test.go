package consumer

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"gorm.io/gorm"
)

type lazyRow struct {
	ID int64 `gorm:"primaryKey"`
}

func lazyDB(t *testing.T) *gorm.DB {
	t.Helper()
	db, err := OpenDatabase(DriverSQLite, filepath.Join(t.TempDir(), "lazy.sqlite3"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB, _ := db.DB(); _ = sqlDB.Close() })
	if err := db.AutoMigrate(&lazyRow{}); err != nil {
		t.Fatal(err)
	}
	return db
}

func countRows(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Model(&lazyRow{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestALazyTransaction(t *testing.T) {
	ctx := context.Background()
	t.Run("holds no connection until its first statement, and commits nothing without one", func(t *testing.T) {
		db := lazyDB(t) // SQLite: one connection
		tx, err := beginLazy(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, db); n != 0 { // would wait forever if tx held the only connection
			t.Fatalf("%d rows", n)
		}
		if err := tx.Commit().Error; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("commits its statements together", func(t *testing.T) {
		db := lazyDB(t)
		tx, _ := beginLazy(ctx, db)
		for i := range 3 {
			if err := tx.Create(&lazyRow{ID: int64(i + 1)}).Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit().Error; err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, db); n != 3 {
			t.Fatalf("%d rows after commit, want 3", n)
		}
	})
	t.Run("rolls back, nested transactions as savepoints", func(t *testing.T) {
		db := lazyDB(t)
		tx, _ := beginLazy(ctx, db)
		if err := tx.Create(&lazyRow{ID: 1}).Error; err != nil {
			t.Fatal(err)
		}
		inner := errors.New("inner fails")
		if err := tx.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&lazyRow{ID: 2}).Error; err != nil {
				return err
			}
			return inner
		}); !errors.Is(err, inner) {
			t.Fatal(err)
		}
		var n int64
		if err := tx.Model(&lazyRow{}).Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("inside: %d rows (%v), want 1 (the savepoint rolled back)", n, err)
		}
		if err := tx.Rollback().Error; err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, db); n != 0 {
			t.Fatalf("%d rows after rollback, want 0", n)
		}
	})
	t.Run("a transaction that cannot begin fails its statements and its commit", func(t *testing.T) {
		db := lazyDB(t)
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		tx, _ := beginLazy(cancelled, db)
		if err := tx.Create(&lazyRow{ID: 1}).Error; err == nil {
			t.Fatal("a statement succeeded in a transaction that could not begin")
		}
		if err := tx.Commit().Error; !errors.Is(err, context.Canceled) {
			t.Fatalf("commit: %v, want the reason it could not begin", err)
		}
		if n := countRows(t, db); n != 0 {
			t.Fatalf("%d rows", n)
		}
	})
}
