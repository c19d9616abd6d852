// Package cli holds the consumer-side subcommands of the kafkasub binary: consumer (what
// every pod runs), and the tools a person drives it with: demo, dev, produce, dlq, db.
package cli

import "github.com/spf13/cobra"

// Commands returns the consumer-side subcommands: consumer, demo, dev, produce, dlq, db.
func Commands() []*cobra.Command {
	return []*cobra.Command{
		NewConsumerCommand(),
		newDemoCommand(),
		newDevCommand(),
		newProduceCommand(),
		newDLQCommand(),
		newDBCommand(),
	}
}
