package consumer

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	sqlitedriver "github.com/glebarez/go-sqlite"
	"github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// sqlDriverNames maps a Config database driver to its database/sql driver name.
var sqlDriverNames = map[string]string{
	DriverPostgres: "pgx",
	DriverMySQL:    "mysql",
	DriverSQLite:   "sqlite", // github.com/glebarez/go-sqlite, pure Go
}

// DatabaseOption changes how OpenDatabase opens a database.
type DatabaseOption func(*databaseOptions)

type databaseOptions struct {
	wrap           func(driver.Connector) driver.Connector
	maxConnections int
}

// Connection pool of a PostgreSQL or MySQL database (OpenDatabase).
const (
	// DefaultMaxConnections is how many connections a consumer opens to its database at
	// most, unless database.maxConnections says otherwise: each partition it consumes runs
	// one transaction at a time, and the offset reads and the health check need one now and
	// then.
	DefaultMaxConnections = 10
	// connMaxIdleTime closes a connection unused this long (an idle consumer lets go).
	connMaxIdleTime = 5 * time.Minute
	// connMaxLifetime replaces a connection this old, so that a database's failover or a
	// pooler's rebalancing reaches every consumer.
	connMaxLifetime = 30 * time.Minute
)

// WithMaxConnections caps the connections to a PostgreSQL or MySQL database at n (default
// DefaultMaxConnections); SQLite always has one.
func WithMaxConnections(n int) DatabaseOption {
	return func(o *databaseOptions) { o.maxConnections = n }
}

// WithConnector wraps the database/sql connector, e.g. with dbfault.Gate to make the
// database unreachable on demand.
func WithConnector(wrap func(driver.Connector) driver.Connector) DatabaseOption {
	return func(o *databaseOptions) { o.wrap = wrap }
}

// OpenDatabase opens a gorm database for one of the Driver* names. SQLite gets the pragmas
// of withSQLitePragmas that its DSN does not set, and a single connection that every
// partition shares (one writer at a time is all SQLite allows; sharing one connection
// queues the partitions' transactions instead of having them contend for the lock).
// PostgreSQL and MySQL get a pool of up to DefaultMaxConnections (WithMaxConnections) that
// keeps as many open while they are in use: database/sql keeps only two idle by default,
// so a consumer of more partitions would close a connection after nearly every batch and
// open a new one (a server process, authentication, TLS and the prepared statements again)
// for the next.
// OpenDatabase does not reach the database; use PingDatabase for that.
func OpenDatabase(driverName, dsn string, opts ...DatabaseOption) (*gorm.DB, error) {
	var o databaseOptions
	for _, opt := range opts {
		opt(&o)
	}
	sqlName, ok := sqlDriverNames[driverName]
	if !ok {
		return nil, fmt.Errorf("database.driver: %q must be %s, %s or %s", driverName, DriverPostgres, DriverMySQL, DriverSQLite)
	}
	if driverName == DriverSQLite {
		dsn = withSQLitePragmas(dsn)
	}
	connector, err := openConnector(sqlName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", driverName, redactDSNError(err, dsn))
	}
	if o.wrap != nil {
		connector = o.wrap(connector)
	}
	sqlDB := sql.OpenDB(connector)
	var dialector gorm.Dialector
	switch driverName {
	case DriverPostgres:
		dialector = postgres.New(postgres.Config{Conn: sqlDB})
	case DriverMySQL:
		dialector = gormmysql.New(gormmysql.Config{Conn: sqlDB, SkipInitializeWithVersion: true})
	case DriverSQLite:
		sqlDB.SetMaxOpenConns(1)
		dialector = &sqlite.Dialector{Conn: sqlDB}
	}
	if driverName != DriverSQLite {
		n := o.maxConnections
		if n <= 0 {
			n = DefaultMaxConnections
		}
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxIdleTime(connMaxIdleTime)
		sqlDB.SetConnMaxLifetime(connMaxLifetime)
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Default.LogMode(logger.Silent),
		SkipDefaultTransaction: true,
		DisableAutomaticPing:   true,
	})
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open %s database: %w", driverName, ClassifyDatabaseError(err))
	}
	return db, nil
}

// sqlitePragmas are the defaults of a SQLite database, each unless the DSN sets it: wait
// up to 5 s for a lock another process holds; a write-ahead log, so a commit appends to
// one file; synchronous=NORMAL, which syncs the log at checkpoints rather than at every
// commit; and a checkpoint every 40,000 pages (the log grows to about 160 MB) rather than
// 1,000: a checkpoint copies every page the log holds back to the database file and syncs
// both files, in the commit that crosses the mark, while every partition waits for the one
// connection; a page that many batches update is copied once per checkpoint, and at
// 10,000 pages checkpoints took a quarter of the pipeline's time into SQLite; and the
// statement journal in memory (temp_store=MEMORY) rather than in a temporary file, which a
// batch's UPDATE of many rows wrote page by page (a quarter of a batch's time in write
// calls); and a page cache of up to 32 MB (cache_size=-32000) rather than 2 MB, so that a
// table of 100,000 rows and its index stay cached. A process that crashes (kill -9) loses
// nothing with NORMAL; an operating
// system crash or power loss may lose the last commits, whose offsets may already be
// committed to Kafka. Set _pragma=synchronous(FULL) in the DSN where that matters.
var sqlitePragmas = []struct{ name, value string }{
	{"busy_timeout", "5000"},
	{"journal_mode", "WAL"},
	{"synchronous", "NORMAL"},
	{"wal_autocheckpoint", "40000"},
	{"temp_store", "MEMORY"},
	{"cache_size", "-32000"},
}

func withSQLitePragmas(dsn string) string {
	for _, p := range sqlitePragmas {
		if strings.Contains(dsn, p.name) {
			continue
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + "_pragma=" + p.name + "(" + p.value + ")"
	}
	return dsn
}

// PingDatabase checks that the database answers within timeout.
func PingDatabase(ctx context.Context, db *gorm.DB, timeout time.Duration) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return ClassifyDatabaseError(sqlDB.PingContext(ctx))
}

func openConnector(sqlName, dsn string) (driver.Connector, error) {
	db, err := sql.Open(sqlName, dsn)
	if err != nil {
		return nil, err
	}
	d := db.Driver()
	_ = db.Close()
	if dc, ok := d.(driver.DriverContext); ok {
		return dc.OpenConnector(dsn)
	}
	return dsnConnector{d: d, dsn: dsn}, nil
}

type dsnConnector struct {
	d   driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

// redactDSNError keeps a DSN (which may hold a password) out of an error message.
func redactDSNError(err error, dsn string) error {
	if dsn == "" || !strings.Contains(err.Error(), dsn) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), dsn, "<dsn>"))
}

// ClassifyDatabaseError marks a database error transient (ClassDatabaseUnavailable) when
// it is a connection failure, a timeout, a lock or serialization conflict that a retry
// can resolve, and permanent (ClassDatabaseError) otherwise. An error already classified
// is returned as it is; nil stays nil.
func ClassifyDatabaseError(err error) error {
	if err == nil {
		return nil
	}
	var p *PermanentError
	var t *TransientError
	if errors.As(err, &p) || errors.As(err, &t) {
		return err
	}
	if IsConnectionError(err) {
		return Transient(ClassDatabaseUnavailable, err)
	}
	return Permanent(ClassDatabaseError, err)
}

// IsConnectionError reports whether err means the database could not be reached or did not
// answer in time (or a conflict a retry resolves), rather than that it refused a statement.
func IsConnectionError(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, mysql.ErrInvalidConn):
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	if pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "57P"), // admin/crash shutdown, cannot connect now
			pgErr.Code == "53300",                // too many connections
			pgErr.Code == "40001",                // serialization failure
			pgErr.Code == "40P01",                // deadlock detected
			pgErr.Code == "55P03",                // lock not available
			pgErr.Code == "57014":                // query cancelled (statement timeout)
			return true
		}
		return false
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case 1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013:
			return true
		}
		return false
	}
	var liteErr *sqlitedriver.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() & 0xff { // primary result code
		case 5, 6, 10, 14: // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_CANTOPEN
			return true
		}
		return false
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "database is locked", "bad connection", "i/o timeout", "no such host"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
