// Command kafkasub is one binary for the whole project: the operator (manager), the
// consumer every pod runs, and the tools a person drives it with (demo, dev, produce, dlq, db).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kafkasub/kafkasub/consumer/cli"
	"github.com/kafkasub/kafkasub/controllers"
)

func main() {
	root := &cobra.Command{
		Use:           "kafkasub",
		Short:         "Run Kafka consumers declared as KafkaSubscription resources",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(controllers.NewManagerCommand())
	root.AddCommand(cli.Commands()...)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafkasub:", err)
		os.Exit(1)
	}
}
