package controllers

import "github.com/spf13/cobra"

// NewManagerCommand returns the `kafkasub manager` subcommand that runs the operator.
// Placeholder until the controller lands.
func NewManagerCommand() *cobra.Command {
	return &cobra.Command{Use: "manager", Short: "Run the KafkaSubscription operator"}
}
