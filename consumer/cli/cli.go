// Package cli holds the consumer-side subcommands of the kafkasub binary.
package cli

import "github.com/spf13/cobra"

// Commands returns the consumer-side subcommands: consumer, demo, dev, produce, dlq, db.
// Placeholder until the consumer lands.
func Commands() []*cobra.Command {
	return []*cobra.Command{
		NewConsumerCommand(),
	}
}
