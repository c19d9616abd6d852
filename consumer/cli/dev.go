package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/embedded"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

// DevReadyLine starts the line `kafkasub dev` prints once the consumer has joined its
// group; scripts and tests wait for it.
const DevReadyLine = "Ready:"

type devOptions struct {
	listen     string
	database   string
	partitions int32
	logLevel   string
	console    bool
}

func newDevCommand() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run an embedded broker, a SQLite database and the consumer until Ctrl-C, to try things by hand",
		Long: `Start the demo's stack and leave it running for you to experiment with: an in-process
Kafka-protocol broker (kfake) with the inventory topic and its dead-letter topic, a SQLite
database migrated and seeded with sample products, and the real inventory consumer. It
prints the broker address, the topics and the database path, then one line per message
outcome (applied, dead-lettered, retrying). Ctrl-C stops everything cleanly.

In another terminal, drive it with:
  kafkasub produce --example valid          (or negative-count, unknown-code, not-json, unexpected-attributes)
  kafkasub dlq list
  kafkasub db products --dsn <the database path it printed>

Type "db down" and "db up" (then Enter) where dev runs to make the database unreachable
for the consumer and bring it back; "products" lists them; "help" lists the commands.
To run dev as a background job, give --console=false (a background job that reads the
terminal is stopped by the shell).

Without --database the database lives in a temporary directory removed on exit; with it,
the file is kept (and seeding again leaves existing products alone). The broker keeps
messages in memory only.`,
		Example: `  kafkasub dev
  kafkasub dev --listen 127.0.0.1:19092 --database ./shop.sqlite3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.listen, "listen", embedded.DefaultListenAddr, "broker listen address host:port (the broker advertises it to clients)")
	fs.StringVar(&o.database, "database", "", "SQLite database file to use and keep (default: a temporary file removed on exit)")
	fs.Int32Var(&o.partitions, "partitions", 1, "partitions of the topic and of the dead-letter topic")
	fs.StringVar(&o.logLevel, "log-level", "error", "consumer log level on standard error: debug, info, warn or error (outcomes are printed either way)")
	fs.BoolVar(&o.console, "console", true, `read "db down", "db up", "products" from standard input`)
	return cmd
}

func runDev(ctx context.Context, in io.Reader, out, errOut io.Writer, o devOptions) (err error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %q must be debug, info, warn or error", o.logLevel)
	}
	if o.partitions < 1 {
		return fmt.Errorf("--partitions: must be at least 1, got %d", o.partitions)
	}
	stack, err := embedded.Start(ctx, embedded.Options{ListenAddr: o.listen, DatabasePath: o.database, Partitions: o.partitions})
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			return fmt.Errorf("%w (is another broker running there? pick an address with --listen)", err)
		}
		return err
	}
	defer func() {
		if cerr := stack.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level}))
	mon := consumer.NewMonitor()
	joined := make(chan struct{})
	var joinOnce sync.Once
	var dbKnown atomic.Bool
	mon.Subscribe(func(e consumer.Event) {
		switch e.Type {
		case consumer.EventGroupJoined:
			joinOnce.Do(func() { close(joined) })
		case consumer.EventProcessed:
			say("applied        %s partition %d offset %d (attempt %d)", e.Topic, e.Partition, e.Offset, e.Attempt)
		case consumer.EventDeadLettered:
			say("dead-lettered  %s partition %d offset %d: %s: %v", e.Topic, e.Partition, e.Offset, e.Class, e.Err)
		case consumer.EventRetrying:
			say("retrying       %s partition %d offset %d in %s: %s: %v", e.Topic, e.Partition, e.Offset, e.Backoff, e.Class, e.Err)
		case consumer.EventDatabaseStatus:
			if first := !dbKnown.Swap(true); first && e.DatabaseUp {
				return // up at start is what everyone expects
			}
			if e.DatabaseUp {
				say("database       answers")
			} else {
				say("database       does not answer")
			}
		}
	})
	c, cfgPath, err := stack.NewConsumer(nil, consumer.WithMonitor(mon), consumer.WithLogger(logger))
	if err != nil {
		return err
	}
	runCtx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(runCtx) }()
	defer func() {
		stopConsumer()
		if rerr := <-runErr; rerr != nil && err == nil {
			err = fmt.Errorf("consumer: %w", rerr)
		}
	}()

	brokers := strings.Join(stack.Brokers, ",")
	say("kafkasub dev: an embedded Kafka broker, a SQLite database and the inventory consumer.")
	say("")
	say("  broker             %s", brokers)
	say("  topic              %s", stack.Topic)
	say("  dead-letter topic  %s", stack.DeadLetterTopic)
	say("  database           %s (SQLite, %d sample products)", stack.DatabasePath, len(stack.Products))
	say("  consumer config    %s (group %s)", cfgPath, embedded.ConsumerGroup)

	select {
	case <-joined:
	case err := <-runErr:
		runErr <- err
		return fmt.Errorf("the consumer stopped before it joined its group: %v", err)
	case <-ctx.Done():
		say("Stopped.")
		return nil
	case <-time.After(time.Minute):
		return fmt.Errorf("the consumer did not join its group within a minute")
	}
	say("  health, metrics    http://%s/readyz  http://%s/metrics", c.HealthAddr(), c.MetricsAddr())
	say("")
	flags := ""
	if brokers != embedded.DefaultListenAddr {
		flags = " --brokers " + brokers
	}
	say("Try, in another terminal:")
	say("  kafkasub produce%s --example valid", flags)
	say("  kafkasub produce%s --example negative-count", flags)
	say("  kafkasub dlq list%s", flags)
	say("  kafkasub db products --dsn %s", stack.DatabasePath)
	if o.console {
		say(`Type "db down" / "db up" here to stop / restore the consumer's database, "products" to list them.`)
	}
	say("%s consumer joined group %s; Ctrl-C stops everything.", DevReadyLine, embedded.ConsumerGroup)

	if o.console {
		go devConsole(ctx, in, stack, say)
	}
	select {
	case <-ctx.Done():
	case err := <-runErr:
		runErr <- err
	}
	stopConsumer()
	say("Stopping.")
	return nil
}

// devConsole reads commands from in, one a line, until in ends or ctx is done.
func devConsole(ctx context.Context, in io.Reader, stack *embedded.Stack, say func(string, ...any)) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if ctx.Err() != nil {
			return
		}
		switch cmd := strings.Join(strings.Fields(sc.Text()), " "); cmd {
		case "":
		case "db down":
			stack.SetDatabaseDown(true)
			say("console        the consumer's database is now unreachable")
		case "db up":
			stack.SetDatabaseDown(false)
			say("console        the consumer's database is reachable again")
		case "products":
			var products []inventory.Product
			if err := stack.DB().WithContext(ctx).Order("id").Find(&products).Error; err != nil {
				say("console        read products: %v", err)
				continue
			}
			for _, p := range products {
				say("console        %-12s %-28s inventory %d", p.Code, p.Name, p.Inventory)
			}
		case "help":
			say(`console        commands: "db down", "db up", "products", "help"; Ctrl-C stops`)
		default:
			say("console        unknown command %q; try help", cmd)
		}
	}
}
