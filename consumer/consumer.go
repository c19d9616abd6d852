// Package consumer is the runtime every kafkasub consumer pod runs: a sarama consumer
// group whose messages go, in per-partition batches, through the registered handler;
// permanent failures go to the dead-letter topic with reason headers, transient ones pause
// the partition and retry with exponential backoff; offsets are marked only once an
// outcome is durable. Every outcome is an Event on a Monitor (logs, Prometheus metrics and
// Sentry subscribe to it), and /healthz, /readyz and /metrics report on the consumer.
//
// The entry point is Run (or New and Consumer.Run); the `kafkasub consumer` subcommand,
// the demo and the tests all use it.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/kafkasub/kafkasub/consumer/offsetstore"
)

// Option changes how New builds a consumer.
type Option func(*options)

type options struct {
	logger          *slog.Logger
	monitor         *Monitor
	db              *gorm.DB
	dbOptions       []DatabaseOption
	handler         Handler
	sarama          func(*sarama.Config)
	registry        *prometheus.Registry
	noHTTP          bool
	pingInterval    time.Duration
	handlerTimeout  time.Duration
	stallTimeout    time.Duration
	startupAttempts int
}

// WithLogger sets the structured logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMonitor uses m, so the caller can Subscribe before Run (default: a new monitor,
// available from Consumer.Monitor).
func WithMonitor(m *Monitor) Option { return func(o *options) { o.monitor = m } }

// WithDatabase uses db instead of opening database.driver with the DSN. The caller owns
// db and closes it.
func WithDatabase(db *gorm.DB) Option { return func(o *options) { o.db = db } }

// WithDatabaseOptions passes options to OpenDatabase (e.g. WithConnector with a
// dbfault.Gate).
func WithDatabaseOptions(opts ...DatabaseOption) Option {
	return func(o *options) { o.dbOptions = append(o.dbOptions, opts...) }
}

// WithHandler uses h instead of the handler registered under cfg.Handler.
func WithHandler(h Handler) Option { return func(o *options) { o.handler = h } }

// WithSarama lets the caller adjust the sarama configuration after SaramaConfig built it.
func WithSarama(fn func(*sarama.Config)) Option { return func(o *options) { o.sarama = fn } }

// WithMetricsRegistry registers the consumer's metrics with r instead of a registry of its
// own; /metrics serves r.
func WithMetricsRegistry(r *prometheus.Registry) Option { return func(o *options) { o.registry = r } }

// WithoutHTTP serves neither the health nor the metrics endpoints (embedding, benchmarks).
func WithoutHTTP() Option { return func(o *options) { o.noHTTP = true } }

// WithPingInterval sets how often the database is pinged for readiness (default 2s).
func WithPingInterval(d time.Duration) Option { return func(o *options) { o.pingInterval = d } }

// WithHandlerTimeout bounds one handler call (default 25s, inside a pod's default 30s grace
// period so a shutdown can finish the batch in flight).
func WithHandlerTimeout(d time.Duration) Option { return func(o *options) { o.handlerTimeout = d } }

// Consumer runs one subscription. Build it with New, start it with Run.
type Consumer struct {
	cfg     *Config
	opts    options
	log     *slog.Logger
	monitor *Monitor
	metrics *metrics
	status  *statusBoard
	handler Handler

	db          *gorm.DB
	ownDB       bool
	store       *offsetstore.Store
	group       sarama.ConsumerGroup
	client      sarama.Client // the group's client, closed after the group
	producer    sarama.SyncProducer
	deadLetters *deadLetterWriter
	saramaCfg   *sarama.Config

	running   atomic.Bool
	joined    atomic.Bool
	dbUp      atomic.Bool
	dbKnown   atomic.Bool
	retrying  atomic.Int32 // claims waiting to retry a transient failure
	busyMu    sync.Mutex
	busySince map[int32]time.Time

	listenMu    sync.Mutex
	healthAddr  string
	metricsAddr string
}

// Run builds a consumer for cfg and runs it until ctx is cancelled; see Consumer.Run.
func Run(ctx context.Context, cfg *Config, opts ...Option) error {
	c, err := New(cfg, opts...)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// New checks cfg (defaults applied to a copy) and prepares a consumer; it does not connect
// to anything yet.
func New(cfg *Config, opts ...Option) (*Consumer, error) {
	o := options{
		pingInterval:   2 * time.Second,
		handlerTimeout: 25 * time.Second,
		stallTimeout:   5 * time.Minute,
	}
	for _, opt := range opts {
		opt(&o)
	}
	cp := *cfg
	cp.Default()
	if o.db != nil && cp.DatabaseDSN == "" {
		cp.DatabaseDSN = "(given)" // the caller brought the database
	}
	if err := cp.Validate(); err != nil {
		return nil, fmt.Errorf("invalid consumer config:\n%w", err)
	}
	if o.handler == nil {
		if err := CheckRegistered(cp.Handler); err != nil {
			return nil, err
		}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.monitor == nil {
		o.monitor = NewMonitor()
	}
	if o.registry == nil {
		o.registry = prometheus.NewRegistry()
	}
	sc, err := SaramaConfig(&cp)
	if err != nil {
		return nil, err
	}
	if o.sarama != nil {
		o.sarama(sc)
	}
	log := o.logger.With("subscription", cp.Subscription, "handler", cp.Handler,
		"topic", cp.Kafka.Topic, "group", cp.Kafka.ConsumerGroup)
	m, err := newMetrics(o.registry, &cp)
	if err != nil {
		return nil, err
	}
	return &Consumer{
		cfg:       &cp,
		opts:      o,
		log:       log,
		monitor:   o.monitor,
		metrics:   m,
		status:    newStatusBoard(cp.DeadLetter.Topic),
		saramaCfg: sc,
		store:     offsetstore.New(cp.Database.OffsetTable),
		busySince: map[int32]time.Time{},
	}, nil
}

// Monitor returns the consumer's event monitor.
func (c *Consumer) Monitor() *Monitor { return c.monitor }

// Config returns the consumer's configuration with defaults applied.
func (c *Consumer) Config() *Config { return c.cfg }

// Ready reports what /readyz reports: the consumer joined its group, the database answers
// and no partition is waiting to retry a transient failure.
func (c *Consumer) Ready() bool { return allPass(c.readinessChecks()) }

func allPass(checks map[string]healthz.Checker) bool {
	for _, check := range checks {
		if check(nil) != nil {
			return false
		}
	}
	return true
}

// livenessChecks are the named checks of /healthz: a failing one means the process should
// be restarted.
func (c *Consumer) livenessChecks() map[string]healthz.Checker {
	return map[string]healthz.Checker{
		"loop": func(*http.Request) error {
			if !c.running.Load() {
				return errors.New("the consumer loop is not running")
			}
			return nil
		},
		"handler-not-stalled": func(*http.Request) error {
			c.busyMu.Lock()
			defer c.busyMu.Unlock()
			for p, since := range c.busySince {
				if d := time.Since(since); d > c.opts.stallTimeout {
					return fmt.Errorf("the handler has been busy with partition %d for %s (stall timeout %s)", p, d.Round(time.Second), c.opts.stallTimeout)
				}
			}
			return nil
		},
	}
}

// readinessChecks are the named checks of /readyz: a failing one means the consumer is
// not making progress now (and says why).
func (c *Consumer) readinessChecks() map[string]healthz.Checker {
	return map[string]healthz.Checker{
		"group": func(*http.Request) error {
			if !c.joined.Load() {
				return errors.New("not joined to the consumer group")
			}
			return nil
		},
		"database": func(*http.Request) error {
			if !c.dbUp.Load() {
				return errors.New("the database does not answer")
			}
			return nil
		},
		"not-retrying": func(*http.Request) error {
			if n := c.retrying.Load(); n > 0 {
				return fmt.Errorf("%d partition(s) retrying after a transient failure", n)
			}
			return nil
		},
	}
}

// Healthy reports what /healthz reports: Run's loop is running and no handler call has
// been stuck for longer than the stall timeout.
func (c *Consumer) Healthy() bool { return allPass(c.livenessChecks()) }

// HealthAddr and MetricsAddr return the addresses the endpoints listen on once Run has
// started them ("" before, or without HTTP).
func (c *Consumer) HealthAddr() string {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	return c.healthAddr
}

// MetricsAddr: see HealthAddr.
func (c *Consumer) MetricsAddr() string {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	return c.metricsAddr
}

// Run connects to the database and the brokers (retrying with backoff while they are
// unreachable), serves the endpoints, and consumes until ctx is cancelled. On cancellation
// (SIGTERM in a pod) it stops taking new batches, lets the batch in flight finish (bounded
// by the handler timeout), commits the marked offsets, leaves the group and returns nil.
func (c *Consumer) Run(ctx context.Context) (err error) {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("consumer is already running")
	}
	defer c.running.Store(false)

	stopSubs := c.subscribeBuiltins()
	defer stopSubs()
	defer c.monitor.Subscribe(c.status.observe, EventProcessed, EventDeadLettered, EventSkipped, EventRetrying, EventErrorOccurred)()

	var servers []*http.Server
	if !c.opts.noHTTP {
		servers, err = c.serveHTTP()
		if err != nil {
			return err
		}
		defer func() {
			for _, s := range servers {
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = s.Shutdown(sctx)
				cancel()
			}
		}()
	}

	if err := c.connect(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer c.closeAll()

	var wg sync.WaitGroup
	defer wg.Wait()
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	wg.Add(2)
	go func() { defer wg.Done(); c.pingLoop(loopCtx) }()
	go func() {
		defer wg.Done()
		for err := range c.group.Errors() {
			c.log.Warn("Kafka consumer group error", "error", err)
		}
	}()

	c.log.Info("Consuming", "brokers", c.cfg.Kafka.BootstrapServers, "deadLetterTopic", c.cfg.DeadLetter.Topic)
	gh := &groupHandler{c: c}
	for {
		err := c.group.Consume(ctx, []string{c.cfg.Kafka.Topic}, gh)
		if ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
			break
		}
		if err != nil {
			c.log.Warn("Consumer group session ended with an error; rejoining", "error", err)
			if !sleepCtx(ctx, time.Second) {
				break
			}
		}
	}
	c.log.Info("Stopping: committing marked offsets and leaving the group")
	stopLoop()
	if err := c.group.Close(); err != nil {
		c.log.Warn("Closing the consumer group", "error", err)
	}
	return nil
}

// connect opens the database, builds the handler, runs migrations when configured, and
// creates the dead-letter producer and the consumer group. Unreachable servers are retried
// with the configured backoff until ctx ends.
func (c *Consumer) connect(ctx context.Context) error {
	if c.opts.db != nil {
		c.db = c.opts.db
	} else {
		opts := append([]DatabaseOption{WithMaxConnections(c.cfg.Database.MaxConnections)}, c.opts.dbOptions...)
		db, err := OpenDatabase(c.cfg.Database.Driver, c.cfg.DatabaseDSN, opts...)
		if err != nil {
			return err
		}
		c.db, c.ownDB = db, true
	}
	if c.opts.handler != nil {
		c.handler = c.opts.handler
	} else {
		factory, _ := Lookup(c.cfg.Handler)
		h, err := factory(Deps{DB: c.db, Config: c.cfg, Logger: c.log})
		if err != nil {
			c.closeAll()
			return fmt.Errorf("handler %s: %w", c.cfg.Handler, err)
		}
		c.handler = h
	}
	steps := []struct {
		what string
		fn   func() error
	}{
		{"database", func() error { return c.checkDatabase(ctx) }},
		{"dead-letter producer", func() (err error) {
			// The producer's limit is the dead-letter topic's max.message.bytes, whether
			// that is below or above sarama's default of 1 MiB: a letter is cut only where
			// the topic has no room for it.
			pc := *c.saramaCfg
			if pc.Producer.Partitioner, err = c.declareDeadLetterTopic(&pc); err != nil {
				return err
			}
			pc.Producer.MaxMessageBytes = int(sarama.MaxRequestSize) - 1
			limit, lerr := deadLetterLimit(c.cfg.Kafka.BootstrapServers, &pc, c.cfg.DeadLetter.Topic)
			if lerr != nil {
				c.log.Warn("Cannot read the dead-letter topic's size limit; assuming one", "limit", limit, "error", lerr)
			}
			pc.Producer.MaxMessageBytes = limit
			c.producer, err = sarama.NewSyncProducer(c.cfg.Kafka.BootstrapServers, &pc)
			if err == nil {
				c.deadLetters = newDeadLetterWriter(c.producer, c.cfg.DeadLetter.Topic, limit)
				c.deadLetters.log = c.log
			}
			return err
		}},
		{"consumer group", func() (err error) {
			c.client, err = sarama.NewClient(c.cfg.Kafka.BootstrapServers, c.saramaCfg)
			if err != nil {
				return err
			}
			c.group, err = sarama.NewConsumerGroupFromClient(c.cfg.Kafka.ConsumerGroup, c.client)
			if err != nil {
				_ = c.client.Close()
				c.client = nil
			}
			return err
		}},
	}
	for _, s := range steps {
		backoff := c.cfg.Retry.InitialBackoff.Duration
		for {
			err := s.fn()
			if err == nil {
				break
			}
			if IsPermanent(err) {
				c.closeAll()
				return fmt.Errorf("connect %s: %w", s.what, err)
			}
			c.log.Warn("Cannot connect; retrying", "to", s.what, "error", err, "backoff", backoff)
			if !sleepCtx(ctx, backoff) {
				c.closeAll()
				return ctx.Err()
			}
			backoff = min(2*backoff, c.cfg.Retry.MaxBackoff.Duration)
		}
	}
	return nil
}

// checkDatabase pings the database, creates the offset store's table (the runtime's own
// migration, always run) and runs the handler's migrations when configured.
func (c *Consumer) checkDatabase(ctx context.Context) error {
	if c.db == nil {
		return nil
	}
	if err := PingDatabase(ctx, c.db, 5*time.Second); err != nil {
		c.setDBUp(false)
		return err
	}
	c.setDBUp(true)
	if err := c.store.Migrate(ctx, c.db); err != nil {
		return fmt.Errorf("create the offset table %s (database.offsetTable): %w", c.store.Table(), ClassifyDatabaseError(err))
	}
	if m, ok := c.handler.(Migrator); ok && c.cfg.Database.Migrate {
		if err := m.Migrate(ctx); err != nil {
			return ClassifyDatabaseError(err)
		}
		c.log.Info("Migrated the database")
	}
	return nil
}

func (c *Consumer) closeAll() {
	if c.client != nil {
		if err := c.client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
			c.log.Warn("Closing the Kafka client", "error", err)
		}
		c.client = nil
	}
	if c.producer != nil {
		if err := c.producer.Close(); err != nil {
			c.log.Warn("Closing the dead-letter producer", "error", err)
		}
		c.producer = nil
	}
	if c.ownDB && c.db != nil {
		if sqlDB, err := c.db.DB(); err == nil {
			_ = sqlDB.Close()
		}
		c.db = nil
	}
}

// pingLoop keeps the database state (readiness, the database-up gauge) current.
func (c *Consumer) pingLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if up, known := pingDatabaseState(ctx, c.db, min(c.opts.pingInterval, 5*time.Second)); known {
				c.setDBUp(up)
			}
		}
	}
}

// pingDatabaseState pings the database. A ping that runs out of time while every connection
// of the pool is in use says nothing (known false): it waited for a connection, not for the
// database, and the batches holding them report the database's state themselves (an applied
// batch sets it up, a transient database error down).
func pingDatabaseState(ctx context.Context, db *gorm.DB, timeout time.Duration) (up, known bool) {
	saturated := func() bool {
		sqlDB, err := db.DB()
		if err != nil {
			return false
		}
		st := sqlDB.Stats()
		return st.MaxOpenConnections > 0 && st.InUse >= st.MaxOpenConnections
	}
	busy := saturated()
	err := PingDatabase(ctx, db, timeout)
	switch {
	case err == nil:
		return true, true
	case errors.Is(err, context.DeadlineExceeded) && (busy || saturated()):
		return false, false
	default:
		return false, true
	}
}

// setDBUp records the database state and publishes EventDatabaseStatus when it changes.
func (c *Consumer) setDBUp(up bool) {
	old := c.dbUp.Swap(up)
	known := c.dbKnown.Swap(true)
	if known && old == up {
		return
	}
	c.monitor.Publish(Event{Type: EventDatabaseStatus, Subscription: c.cfg.Subscription,
		Group: c.cfg.Kafka.ConsumerGroup, DatabaseUp: up})
}

func (c *Consumer) serveHTTP() ([]*http.Server, error) {
	health := http.NewServeMux()
	health.HandleFunc(StatusPath, c.serveStatus)
	for path, checks := range map[string]map[string]healthz.Checker{"/healthz": c.livenessChecks(), "/readyz": c.readinessChecks()} {
		h := http.StripPrefix(path, &healthz.Handler{Checks: checks})
		health.Handle(path, h)     // all checks; ?verbose lists them
		health.Handle(path+"/", h) // one check by name, e.g. /readyz/database, with its reason
	}
	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", c.metrics.handler())

	var servers []*http.Server
	start := func(addr string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, s := range servers {
				_ = s.Close()
			}
			return "", fmt.Errorf("listen on %s: %w", addr, err)
		}
		s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, s)
		go func() { _ = s.Serve(ln) }()
		return ln.Addr().String(), nil
	}
	if c.cfg.HealthAddr == c.cfg.MetricsAddr {
		health.Handle("/metrics", c.metrics.handler())
		addr, err := start(c.cfg.HealthAddr, health)
		if err != nil {
			return nil, err
		}
		c.listenMu.Lock()
		c.healthAddr, c.metricsAddr = addr, addr
		c.listenMu.Unlock()
		return servers, nil
	}
	ha, err := start(c.cfg.HealthAddr, health)
	if err != nil {
		return nil, err
	}
	ma, err := start(c.cfg.MetricsAddr, metricsMux)
	if err != nil {
		return nil, err
	}
	c.listenMu.Lock()
	c.healthAddr, c.metricsAddr = ha, ma
	c.listenMu.Unlock()
	return servers, nil
}

// sleepCtx waits d or until ctx ends; it reports whether the full wait elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
