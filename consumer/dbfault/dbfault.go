// Package dbfault makes a database unreachable for real, on demand, so that tests and the
// demo can show what the consumer does while its database is down.
//
// Gate wraps a database/sql connector (any driver, SQLite included): while the gate is
// down, new connections fail and every operation on an open connection returns
// driver.ErrBadConn, exactly what a dropped connection looks like to database/sql, so the
// pool discards the connection. Proxy is a TCP proxy for networked databases (PostgreSQL,
// MySQL): Cut closes every connection and refuses new ones until Restore.
//
//	gate := dbfault.NewGate()
//	db, _ := consumer.OpenDatabase("sqlite", dsn, consumer.WithConnector(gate.Wrap))
//	gate.SetDown(true) // the database is unreachable
//	gate.SetDown(false)
package dbfault

import (
	"context"
	"database/sql/driver"
	"sync/atomic"
)

// Gate switches a wrapped connector between reachable and unreachable. The zero value is
// up; it is safe for concurrent use.
type Gate struct {
	down atomic.Bool
}

// NewGate returns an open (up) gate.
func NewGate() *Gate { return &Gate{} }

// SetDown makes the database unreachable (true) or reachable again (false).
func (g *Gate) SetDown(down bool) { g.down.Store(down) }

// Down reports whether the gate is down.
func (g *Gate) Down() bool { return g.down.Load() }

// Wrap returns c behind the gate (the signature consumer.WithConnector takes).
func (g *Gate) Wrap(c driver.Connector) driver.Connector { return &connector{g: g, c: c} }

type connector struct {
	g *Gate
	c driver.Connector
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.g.Down() {
		return nil, driver.ErrBadConn
	}
	conn, err := c.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &gatedConn{g: c.g, c: conn}, nil
}

func (c *connector) Driver() driver.Driver { return c.c.Driver() }

// gatedConn forwards to the real connection while the gate is up.
type gatedConn struct {
	g *Gate
	c driver.Conn
}

func (c *gatedConn) check() error {
	if c.g.Down() {
		return driver.ErrBadConn
	}
	return nil
}

func (c *gatedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *gatedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var st driver.Stmt
	var err error
	if p, ok := c.c.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = c.c.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &gatedStmt{g: c.g, s: st}, nil
}

func (c *gatedConn) Close() error { return c.c.Close() }

func (c *gatedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *gatedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var tx driver.Tx
	var err error
	if b, ok := c.c.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		tx, err = c.c.Begin() //nolint:staticcheck // fallback for old drivers
	}
	if err != nil {
		return nil, err
	}
	return &gatedTx{g: c.g, tx: tx}, nil
}

func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if e, ok := c.c.(driver.ExecerContext); ok {
		return e.ExecContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *gatedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if q, ok := c.c.(driver.QueryerContext); ok {
		return q.QueryContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *gatedConn) Ping(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	if p, ok := c.c.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *gatedConn) ResetSession(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	if r, ok := c.c.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *gatedConn) IsValid() bool {
	if c.g.Down() {
		return false
	}
	if v, ok := c.c.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *gatedConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.c.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type gatedTx struct {
	g  *Gate
	tx driver.Tx
}

func (t *gatedTx) Commit() error {
	if t.g.Down() {
		_ = t.tx.Rollback()
		return driver.ErrBadConn
	}
	return t.tx.Commit()
}

func (t *gatedTx) Rollback() error { return t.tx.Rollback() }

type gatedStmt struct {
	g *Gate
	s driver.Stmt
}

func (s *gatedStmt) Close() error  { return s.s.Close() }
func (s *gatedStmt) NumInput() int { return s.s.NumInput() }

func (s *gatedStmt) Exec(args []driver.Value) (driver.Result, error) {
	if s.g.Down() {
		return nil, driver.ErrBadConn
	}
	return s.s.Exec(args) //nolint:staticcheck // the driver.Stmt interface
}

func (s *gatedStmt) Query(args []driver.Value) (driver.Rows, error) {
	if s.g.Down() {
		return nil, driver.ErrBadConn
	}
	return s.s.Query(args) //nolint:staticcheck // the driver.Stmt interface
}

func (s *gatedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.g.Down() {
		return nil, driver.ErrBadConn
	}
	if e, ok := s.s.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return s.s.Exec(values(args)) //nolint:staticcheck // fallback for old drivers
}

func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s.g.Down() {
		return nil, driver.ErrBadConn
	}
	if q, ok := s.s.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return s.s.Query(values(args)) //nolint:staticcheck // fallback for old drivers
}

func values(args []driver.NamedValue) []driver.Value {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}
