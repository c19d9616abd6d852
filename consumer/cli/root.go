package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/cobra"

	"github.com/kafkasub/kafkasub/controllers"
)

// Main runs the whole kafkasub binary — the operator (manager), the consumer every pod
// runs, and the tools (demo, dev, produce, dlq, db) — with every handler registered in
// this process, then exits: 0 on success, 1 after printing the error. A team's image is a
// main package that registers its handlers (importing their package for its init) and
// calls Main:
//
//	package main
//
//	import (
//		"github.com/kafkasub/kafkasub/consumer/cli"
//
//		_ "example.com/shop/orderstatus" // registers orderstatus.updates
//	)
//
//	func main() { cli.Main() }
//
// The binary always registers inventory.product-updates as well (the demo's handler).
func Main() {
	// The Go memory limit follows the container's (90% of its cgroup's memory limit), so the
	// garbage collector works harder before the kernel kills the process; GOMEMLIMIT, when
	// set, wins, and without a limit nothing changes.
	_, _ = memlimit.Set(memlimit.WithRatio(0.9), memlimit.WithProvider(memlimit.FromCgroup),
		memlimit.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := NewRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafkasub:", err)
		os.Exit(1)
	}
}

// NewRootCommand returns the kafkasub command with all its subcommands.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "kafkasub",
		Short:         "Run Kafka consumers declared as KafkaSubscription resources",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(controllers.NewManagerCommand())
	root.AddCommand(Commands()...)
	return root
}
