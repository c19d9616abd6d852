package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/embedded"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// The outcomes a demo case can end in.
const (
	endApplied      = "applied"
	endDeadLettered = "dead-lettered"
	endNone         = "no outcome"
)

// demoCase is one step of the mission's walk-through and what it must end in.
type demoCase struct {
	name    string // as printed
	example string // the payload, see buildExample
	count   int64  // inventory count of a valid example
	dbDown  bool   // the database is unreachable when the message is sent
	// expected outcome
	end          string
	class        consumer.ErrorClass
	messageHas   string // a part of the error message
	wantRetries  bool   // transient failures must come before the outcome
	wantApplied  bool   // Product.first's inventory becomes count
	expectedText string // what the table says was expected
}

func demoCases() []demoCase {
	return []demoCase{
		{name: "valid update", example: ExampleValid, count: DefaultExampleCount,
			end: endApplied, wantApplied: true, expectedText: "applied"},
		{name: "negative count", example: ExampleNegativeCount,
			end: endDeadLettered, class: consumer.ClassValidationFailed, messageHas: inventory.MsgInventoryCountNegative,
			expectedText: "dead-lettered, inventory unchanged"},
		{name: "unknown product code", example: ExampleUnknownCode,
			end: endDeadLettered, class: consumer.ClassValidationFailed, messageHas: inventory.MsgProductCodeUnknown(UnknownProductCode),
			expectedText: "dead-lettered"},
		{name: "not JSON", example: ExampleNotJSON,
			end: endDeadLettered, class: consumer.ClassInvalidPayload, messageHas: "not a JSON object",
			expectedText: "dead-lettered"},
		{name: "unexpected attributes", example: ExampleUnexpectedAttributes,
			end: endDeadLettered, class: consumer.ClassUnexpectedAttributes, messageHas: "greeting",
			expectedText: "dead-lettered"},
		{name: "database down", example: ExampleValid, count: 30, dbDown: true,
			end: endApplied, wantRetries: true, wantApplied: true, expectedText: "retried, applied when the database is back"},
	}
}

// demoResult is how one case ended.
type demoResult struct {
	Case      string `json:"case"`
	Sent      string `json:"sent"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Product is Product.first's code; Before and After its inventory around the case.
	Product string `json:"product"`
	Before  int64  `json:"before"`
	After   int64  `json:"after"`
	// End is applied, dead-lettered or "no outcome".
	End string `json:"end"`
	// ErrorClass and ErrorMessage are read back from the dead-letter record's headers.
	ErrorClass   string `json:"errorClass,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	// Retries counts the transient failures before the outcome, of RetryClass.
	Retries    int    `json:"retries"`
	RetryClass string `json:"retryClass,omitempty"`
	Expected   string `json:"expected"`
	OK         bool   `json:"ok"`
	// Problems says why a case did not end as expected.
	Problems []string `json:"problems,omitempty"`
}

func (r demoResult) ended() string {
	switch {
	case r.End == endDeadLettered:
		return fmt.Sprintf("dead-letter topic: %s: %s", r.ErrorClass, r.ErrorMessage)
	case r.End == endApplied && r.Retries > 0:
		return fmt.Sprintf("retried %d times (%s), then applied", r.Retries, r.RetryClass)
	}
	return r.End
}

type demoOptions struct {
	verbose     bool
	keep        bool
	caseTimeout time.Duration
	cases       []demoCase // nil: demoCases()
}

func newDemoCommand() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play the inventory walk-through on an embedded broker and database (needs nothing but this binary)",
		Long: `Play the mission's walk-through end to end, with nothing installed: an in-process
Kafka-protocol broker (kfake) and a SQLite database in a temporary directory, migrated and
seeded, and the real consumer (the code every pod runs, configured through the same file
and environment a pod gets). It then sends, one at a time:

  a valid update, a negative count, an unknown product code, a payload that is not JSON,
  JSON with unexpected attributes, and a valid update while the database is down

and prints, for each, what was sent, Product.first's inventory before and after, and where
the message ended: applied, in the dead-letter topic with its error class and message, or
retried and applied once the database was back. It exits 0 only if every case ended as
expected. Everything it started is stopped and removed at the end (see --keep).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := runDemo(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
			return err
		},
	}
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "show the consumer's own log on standard error")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "keep the temporary directory (database, consumer config and log) and print its path")
	cmd.Flags().DurationVar(&o.caseTimeout, "case-timeout", 30*time.Second, "how long one case may take before it counts as failed")
	return cmd
}

// runDemo plays the walk-through and returns each case's result. The error is non-nil when
// the stack could not run or any case did not end as expected.
func runDemo(ctx context.Context, out, errOut io.Writer, o demoOptions) (results []demoResult, err error) {
	if o.caseTimeout <= 0 {
		return nil, fmt.Errorf("--case-timeout: must be positive, got %s", o.caseTimeout)
	}
	fmt.Fprintln(out, "kafkasub demo: the inventory walk-through on an embedded Kafka broker and SQLite database")
	fmt.Fprintln(out)
	step := func(format string, args ...any) { fmt.Fprintf(out, "  "+format+"\n", args...) }

	stack, err := embedded.Start(ctx, embedded.Options{})
	if err != nil {
		return nil, err
	}
	defer func() {
		if o.keep {
			stack.Keep()
			fmt.Fprintf(out, "\nKept %s (database, consumer config and log).\n", stack.Dir)
		}
		if cerr := stack.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	step("broker    %s (kfake, in-process)", strings.Join(stack.Brokers, ","))
	step("topics    %s, dead letters to %s", stack.Topic, stack.DeadLetterTopic)
	step("database  %s (SQLite), migrated and seeded with %d products", stack.DatabasePath, len(stack.Products))

	logPath := filepath.Join(stack.Dir, "consumer.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create the consumer log: %w", err)
	}
	defer logFile.Close()
	var logOut io.Writer = logFile
	if o.verbose {
		logOut = io.MultiWriter(logFile, errOut)
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))

	rec := newEventRecorder()
	mon := consumer.NewMonitor()
	mon.Subscribe(rec.observe)
	cfg := stack.ConsumerConfig()
	cfg.Retry = consumer.RetryConfig{
		InitialBackoff: consumer.Duration{Duration: 100 * time.Millisecond},
		MaxBackoff:     consumer.Duration{Duration: time.Second},
	}
	c, cfgPath, err := stack.NewConsumer(cfg, consumer.WithMonitor(mon), consumer.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	runCtx, stopConsumer := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(runCtx) }()
	defer func() {
		stopConsumer()
		if rerr := <-runErr; rerr != nil && err == nil {
			err = fmt.Errorf("consumer: %w", rerr)
		}
		if err != nil && !o.verbose {
			tailLog(errOut, logPath, 20)
		}
	}()
	if err := rec.wait(ctx, o.caseTimeout, func() bool { return rec.joined }); err != nil {
		return nil, fmt.Errorf("the consumer did not join its group within %s: %w", o.caseTimeout, err)
	}
	step("consumer  %s, configured by %s (as a pod is), joined group %s",
		inventory.HandlerName, cfgPath, cfg.Kafka.ConsumerGroup)

	kf := kafkaFlags{brokers: stack.Brokers, timeout: 10 * time.Second}
	client, err := kf.client("kafkasub-demo")
	if err != nil {
		return nil, err
	}
	defer client.Close()
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer producer.Close()

	first := stack.Products[0]
	fmt.Fprintf(out, "\nProduct.first is %s (%s), inventory %d.\n\n", first.Code, first.Name, first.Inventory)

	cases := o.cases
	if cases == nil {
		cases = demoCases()
	}
	for i, dc := range cases {
		fmt.Fprintf(out, "[%d/%d] %s: ", i+1, len(cases), dc.name)
		r, err := playCase(ctx, out, stack, rec, client, producer, dc, o.caseTimeout)
		if err != nil {
			fmt.Fprintln(out)
			return results, err
		}
		results = append(results, r)
		if r.OK {
			fmt.Fprintf(out, " -> %s\n", r.End)
		} else {
			fmt.Fprintf(out, " -> %s, NOT AS EXPECTED: %s\n", r.End, strings.Join(r.Problems, "; "))
		}
	}

	fmt.Fprintln(out)
	writeDemoTable(out, first.Code, results)
	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
		}
	}
	fmt.Fprintln(out)
	if failed > 0 {
		return results, fmt.Errorf("%d of %d cases did not end as expected", failed, len(results))
	}
	fmt.Fprintf(out, "All %d cases ended as expected.\n", len(results))
	return results, nil
}

// playCase sends one case's message and waits for its outcome.
func playCase(ctx context.Context, out io.Writer, stack *embedded.Stack, rec *eventRecorder,
	client sarama.Client, producer sarama.SyncProducer, dc demoCase, timeout time.Duration) (demoResult, error) {
	first := stack.Products[0]
	ex, err := buildExample(dc.example, first.Code, dc.count)
	if err != nil {
		return demoResult{}, err
	}
	r := demoResult{Case: dc.name, Sent: ex.Value, Product: first.Code, Expected: dc.expectedText, End: endNone}
	before, err := stack.Product(ctx, first.Code)
	if err != nil {
		return r, fmt.Errorf("read Product.first: %w", err)
	}
	r.Before = before.Inventory

	if dc.dbDown {
		stack.SetDatabaseDown(true)
		fmt.Fprint(out, "database made unreachable; ")
	}
	msg := &sarama.ProducerMessage{Topic: stack.Topic, Value: sarama.StringEncoder(ex.Value)}
	if ex.Code != "" {
		msg.Key = sarama.StringEncoder(ex.Code)
	}
	r.Partition, r.Offset, err = producer.SendMessage(msg)
	if err != nil {
		stack.SetDatabaseDown(false)
		return r, fmt.Errorf("send the %s message: %w", dc.name, err)
	}
	fmt.Fprintf(out, "sent %s (partition %d, offset %d)", ex.Value, r.Partition, r.Offset)

	if dc.dbDown {
		// Let the consumer fail a few times for real, then bring the database back.
		seen := 0
		err := rec.wait(ctx, timeout, func() bool {
			t := rec.track(r.Partition, r.Offset)
			for ; seen < t.retries; seen++ {
				fmt.Fprintf(out, "; attempt %d failed (%s)", seen+1, t.retryClass)
			}
			return t.retries >= 2 || t.end != ""
		})
		stack.SetDatabaseDown(false)
		if err == nil {
			fmt.Fprint(out, "; database back")
		}
	}
	waitErr := rec.wait(ctx, timeout, func() bool { return rec.track(r.Partition, r.Offset).end != "" })
	t := rec.snapshot(r.Partition, r.Offset)
	if waitErr == nil {
		r.End = t.end
	}
	r.Retries, r.RetryClass = t.retries, string(t.retryClass)
	after, err := stack.Product(ctx, first.Code)
	if err != nil {
		return r, fmt.Errorf("read Product.first: %w", err)
	}
	r.After = after.Inventory

	if r.End == endDeadLettered {
		// Where it ended is read back from the dead-letter topic itself.
		dl, err := findDeadLetter(client, stack.DeadLetterTopic, stack.Topic, r.Partition, r.Offset, timeout)
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
		} else {
			r.ErrorClass, r.ErrorMessage = dl.ErrorClass, dl.ErrorMessage
		}
	}
	r.Problems = append(r.Problems, dc.check(r, before.Inventory)...)
	if waitErr != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("no outcome within %s", timeout))
	}
	r.OK = len(r.Problems) == 0
	return r, nil
}

// check compares a result with the case's expectation.
func (dc demoCase) check(r demoResult, before int64) []string {
	var p []string
	if r.End != dc.end {
		p = append(p, fmt.Sprintf("ended %s, want %s", r.End, dc.end))
	}
	if dc.end == endDeadLettered && r.ErrorClass != "" {
		if r.ErrorClass != string(dc.class) {
			p = append(p, fmt.Sprintf("error class %s, want %s", r.ErrorClass, dc.class))
		}
		if !strings.Contains(r.ErrorMessage, dc.messageHas) {
			p = append(p, fmt.Sprintf("error message %q does not say %q", r.ErrorMessage, dc.messageHas))
		}
	}
	switch {
	case dc.wantApplied && r.After != dc.count:
		p = append(p, fmt.Sprintf("inventory is %d, want %d", r.After, dc.count))
	case !dc.wantApplied && r.After != before:
		p = append(p, fmt.Sprintf("inventory changed from %d to %d", before, r.After))
	}
	if dc.wantRetries && r.Retries == 0 {
		p = append(p, "it was not retried")
	}
	if dc.wantRetries && r.Retries > 0 && r.RetryClass != string(consumer.ClassDatabaseUnavailable) {
		p = append(p, fmt.Sprintf("retried for %s, want %s", r.RetryClass, consumer.ClassDatabaseUnavailable))
	}
	if !dc.wantRetries && r.Retries > 0 {
		p = append(p, fmt.Sprintf("it was retried %d times", r.Retries))
	}
	return p
}

// findDeadLetter reads the dead-letter topic for the record of the original message.
func findDeadLetter(client sarama.Client, dlqTopic, topic string, partition int32, offset int64, idle time.Duration) (deadLetterRecord, error) {
	recs, err := readTopic(client, dlqTopic, &selection{}, idle)
	if err != nil {
		return deadLetterRecord{}, err
	}
	for _, r := range recs {
		if r.Original.Topic == topic && r.Original.Partition == partition && r.Original.Offset == offset {
			return r, nil
		}
	}
	return deadLetterRecord{}, fmt.Errorf("no record for %s partition %d offset %d in %s", topic, partition, offset, dlqTopic)
}

func writeDemoTable(w io.Writer, code string, results []demoResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CASE\tSENT\t%s INVENTORY\tAS EXPECTED\tENDED\n", code)
	for _, r := range results {
		ok := "yes"
		if !r.OK {
			ok = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d -> %d\t%s\t%s\n", r.Case, shorten(r.Sent, 56), r.Before, r.After, ok, r.ended())
	}
	_ = tw.Flush()
	for _, r := range results {
		if !r.OK {
			fmt.Fprintf(w, "%s: expected %s, but %s\n", r.Case, r.Expected, strings.Join(r.Problems, "; "))
		}
	}
}

// tailLog copies the last n lines of the consumer log to w (after a failure).
func tailLog(w io.Writer, path string, n int) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	fmt.Fprintf(w, "Last lines of the consumer log (%s):\n", path)
	for _, l := range lines {
		fmt.Fprintln(w, "  "+l)
	}
}

// eventRecorder follows the consumer's monitor: group membership and, per message, the
// transient failures and the outcome. The subscriber only records and signals, so it never
// blocks the pipeline.
type eventRecorder struct {
	mu      sync.Mutex
	changed chan struct{}
	joined  bool
	msgs    map[msgKey]*msgTrack
}

type msgKey struct {
	partition int32
	offset    int64
}

type msgTrack struct {
	retries    int
	retryClass consumer.ErrorClass
	end        string
	class      consumer.ErrorClass
}

func newEventRecorder() *eventRecorder {
	return &eventRecorder{changed: make(chan struct{}, 1), msgs: map[msgKey]*msgTrack{}}
}

func (r *eventRecorder) observe(e consumer.Event) {
	r.mu.Lock()
	switch e.Type {
	case consumer.EventGroupJoined:
		r.joined = true
	case consumer.EventGroupLeft:
		r.joined = false
	case consumer.EventRetrying:
		t := r.trackLocked(e.Partition, e.Offset)
		t.retries++
		t.retryClass = e.Class
	case consumer.EventProcessed:
		r.trackLocked(e.Partition, e.Offset).end = endApplied
	case consumer.EventDeadLettered:
		t := r.trackLocked(e.Partition, e.Offset)
		t.end, t.class = endDeadLettered, e.Class
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *eventRecorder) trackLocked(p int32, off int64) *msgTrack {
	k := msgKey{p, off}
	t, ok := r.msgs[k]
	if !ok {
		t = &msgTrack{}
		r.msgs[k] = t
	}
	return t
}

// track is for use inside wait's condition (the lock is held).
func (r *eventRecorder) track(p int32, off int64) msgTrack { return *r.trackLocked(p, off) }

func (r *eventRecorder) snapshot(p int32, off int64) msgTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return *r.trackLocked(p, off)
}

// wait calls cond with the recorder locked until it returns true, ctx ends or timeout
// passes.
func (r *eventRecorder) wait(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			return fmt.Errorf("timed out after %s", timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
