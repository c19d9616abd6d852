package consumer

import (
	"context"
	"database/sql"
	"errors"

	"gorm.io/gorm"
)

// lazyTx is a database transaction that begins at its first statement, as a gorm
// ConnPool and TxCommitter. The runtime hands the handler a transaction before the handler
// has decoded anything; begun lazily, it does not hold a connection (SQLite's only one)
// while the handler does work that needs none.
type lazyTx struct {
	ctx context.Context
	db  *sql.DB
	tx  *sql.Tx
	err error // why the transaction could not begin
}

// beginLazy returns a gorm session on db whose statements run in one lazily begun
// transaction; commit or roll it back with the session's Commit or Rollback.
func beginLazy(ctx context.Context, db *gorm.DB) (*gorm.DB, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	tx := db.Session(&gorm.Session{Context: ctx, NewDB: true})
	tx.Statement.ConnPool = &lazyTx{ctx: ctx, db: sqlDB}
	return tx, nil
}

func (l *lazyTx) begin() (*sql.Tx, error) {
	if l.tx == nil && l.err == nil {
		l.tx, l.err = l.db.BeginTx(l.ctx, nil)
	}
	return l.tx, l.err
}

func (l *lazyTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	tx, err := l.begin()
	if err != nil {
		return nil, err
	}
	return tx.PrepareContext(ctx, query)
}

func (l *lazyTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	tx, err := l.begin()
	if err != nil {
		return nil, err
	}
	return tx.ExecContext(ctx, query, args...)
}

func (l *lazyTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	tx, err := l.begin()
	if err != nil {
		return nil, err
	}
	return tx.QueryContext(ctx, query, args...)
}

// QueryRowContext cannot return the error of a transaction that failed to begin (sql.Row
// has no constructor); its row then fails with a cancelled context, and Commit returns the
// real error.
func (l *lazyTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	tx, err := l.begin()
	if err != nil {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		return l.db.QueryRowContext(cancelled, query, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// GetDBConn lets gorm's DB() find the pool.
func (l *lazyTx) GetDBConn() (*sql.DB, error) { return l.db, nil }

// Commit commits what the transaction did (nothing, if it never began).
func (l *lazyTx) Commit() error {
	if l.err != nil {
		return l.err
	}
	if l.tx == nil {
		return nil
	}
	return l.tx.Commit()
}

// Rollback rolls back what the transaction did.
func (l *lazyTx) Rollback() error {
	if l.tx == nil {
		return nil
	}
	err := l.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
