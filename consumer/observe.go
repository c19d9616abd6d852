package consumer

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Prometheus metric names; every metric carries the labels subscription and topic.
const (
	MetricMessages         = "kafkasub_consumer_messages_total"
	MetricProcessing       = "kafkasub_consumer_processing_seconds"
	MetricRetries          = "kafkasub_consumer_retries_total"
	MetricErrors           = "kafkasub_consumer_errors_total"
	MetricDeadLetterWrites = "kafkasub_consumer_dead_letter_writes_total"
	MetricDatabaseUp       = "kafkasub_consumer_database_up"
	MetricGroupJoined      = "kafkasub_consumer_group_joined"
)

// Outcomes, the values of the outcome label of MetricMessages.
const (
	OutcomeProcessed    = "processed"
	OutcomeDeadLettered = "dead_lettered"
	OutcomeSkipped      = "skipped"
)

type metrics struct {
	registry         *prometheus.Registry
	messages         *prometheus.CounterVec
	processed        prometheus.Counter
	processing       prometheus.Histogram
	retries          *prometheus.CounterVec
	errors           *prometheus.CounterVec
	deadLetterWrites prometheus.Counter
	databaseUp       prometheus.Gauge
	groupJoined      prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry, cfg *Config) (*metrics, error) {
	labels := prometheus.Labels{"subscription": cfg.Subscription, "topic": cfg.Kafka.Topic}
	m := &metrics{
		registry: reg,
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricMessages, ConstLabels: labels,
			Help: "Messages brought to an outcome (processed or dead_lettered), by outcome and error class."},
			[]string{"outcome", "class"}),
		processing: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricProcessing, ConstLabels: labels,
			Help:    "Time from the first attempt on a message's batch to its outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRetries, ConstLabels: labels,
			Help: "Retries after transient errors, by error class."}, []string{"class"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricErrors, ConstLabels: labels,
			Help: "Errors that occurred on messages, by class and whether they were permanent."}, []string{"class", "permanent"}),
		deadLetterWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricDeadLetterWrites, ConstLabels: labels,
			Help: "Records acknowledged by the dead-letter topic."}),
		databaseUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricDatabaseUp, ConstLabels: labels,
			Help: "1 when the database answers, 0 when it does not."}),
		groupJoined: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricGroupJoined, ConstLabels: labels,
			Help: "1 while the consumer is a member of its consumer group."}),
	}
	m.processed = m.messages.WithLabelValues(OutcomeProcessed, "")
	for _, c := range []prometheus.Collector{m.messages, m.processing, m.retries, m.errors, m.deadLetterWrites, m.databaseUp, m.groupJoined} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// The process and Go collectors once per registry; a shared registry may have them.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m, nil
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// observe is the metrics subscriber.
func (m *metrics) observe(e Event) {
	switch e.Type {
	case EventProcessed:
		m.processed.Inc()
		m.processing.Observe(e.Latency.Seconds())
	case EventDeadLettered:
		m.messages.WithLabelValues(OutcomeDeadLettered, string(e.Class)).Inc()
		m.processing.Observe(e.Latency.Seconds())
	case EventSkipped:
		m.messages.WithLabelValues(OutcomeSkipped, string(e.Class)).Inc()
		m.processing.Observe(e.Latency.Seconds())
	case EventRetrying:
		m.retries.WithLabelValues(string(e.Class)).Inc()
	case EventErrorOccurred:
		m.errors.WithLabelValues(string(e.Class), strconv.FormatBool(e.Permanent)).Inc()
	case EventDatabaseStatus:
		m.databaseUp.Set(b2f(e.DatabaseUp))
	case EventGroupJoined:
		m.groupJoined.Set(1)
	case EventGroupLeft:
		m.groupJoined.Set(0)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// LogSubscriber returns a subscriber that writes events as structured logs: dead letters
// and database changes at warn/info, retries at warn, processed messages at debug.
// Payloads are never logged.
func LogSubscriber(log *slog.Logger) Subscriber {
	return func(e Event) {
		switch e.Type {
		case EventProcessed:
			if !log.Enabled(context.Background(), slog.LevelDebug) {
				return
			}
			log.Debug("Processed", "partition", e.Partition, "offset", e.Offset, "attempts", e.Attempt)
		case EventDeadLettered:
			logOutcome(log, "Dead-lettered", e)
		case EventSkipped:
			logOutcome(log, "Skipped by the error policy", e)
		case EventErrorOccurred:
			if !log.Enabled(context.Background(), slog.LevelDebug) {
				return
			}
			log.Debug("Error occurred", "partition", e.Partition, "offset", e.Offset,
				"class", e.Class, "permanent", e.Permanent, "error", e.Err)
		case EventDatabaseStatus:
			if e.DatabaseUp {
				log.Info("Database answers")
			} else {
				log.Warn("Database does not answer")
			}
		}
	}
}

// logOutcome writes a dead letter's or a skip's warning with typed attributes: a line per
// message on the dead-letter path, where logging took a fifth of the consumer's CPU.
func logOutcome(log *slog.Logger, msg string, e Event) {
	log.LogAttrs(context.Background(), slog.LevelWarn, msg,
		slog.Int("partition", int(e.Partition)), slog.Int64("offset", e.Offset),
		slog.String("class", string(e.Class)), slog.Any("error", e.Err), slog.Int("attempts", e.Attempt))
}

// SentrySubscriber returns a subscriber that reports every error.occurred event to Sentry
// through client, tagged with the error class, whether it is permanent, the subscription
// and the message's coordinates.
func SentrySubscriber(client *sentry.Client) Subscriber {
	hub := sentry.NewHub(client, sentry.NewScope())
	return func(e Event) {
		if e.Type != EventErrorOccurred || e.Err == nil {
			return
		}
		hub.WithScope(func(scope *sentry.Scope) {
			scope.SetTags(map[string]string{
				"error_class":  string(e.Class),
				"permanent":    strconv.FormatBool(e.Permanent),
				"subscription": e.Subscription,
				"group":        e.Group,
				"topic":        e.Topic,
				"partition":    strconv.FormatInt(int64(e.Partition), 10),
				"offset":       strconv.FormatInt(e.Offset, 10),
			})
			scope.SetFingerprint([]string{string(e.Class), e.Topic})
			hub.CaptureException(e.Err)
		})
	}
}

// subscribeBuiltins attaches the log, metrics and (with a DSN) Sentry subscribers; the
// returned function detaches them and flushes Sentry.
func (c *Consumer) subscribeBuiltins() func() {
	unsubs := []func(){
		c.monitor.Subscribe(LogSubscriber(c.log)),
		c.monitor.Subscribe(c.metrics.observe),
	}
	var client *sentry.Client
	if c.cfg.SentryDSN != "" {
		var err error
		client, err = sentry.NewClient(sentry.ClientOptions{
			Dsn:         c.cfg.SentryDSN,
			ServerName:  c.cfg.Subscription,
			Environment: "kafkasub",
		})
		if err != nil {
			// The DSN is secret: report only that it was rejected.
			c.log.Error("Sentry is disabled: the DSN was rejected", "env", EnvSentryDSN)
		} else {
			unsubs = append(unsubs, c.monitor.Subscribe(SentrySubscriber(client), EventErrorOccurred))
		}
	}
	return func() {
		for _, u := range unsubs {
			u()
		}
		if client != nil {
			client.Flush(2 * time.Second)
		}
	}
}
