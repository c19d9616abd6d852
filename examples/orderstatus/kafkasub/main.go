// Command kafkasub is the kafkasub binary with the orderstatus handler registered: the
// whole image of a team that consumes order status updates.
package main

import (
	"github.com/kafkasub/kafkasub/consumer/cli"

	_ "github.com/kafkasub/kafkasub/examples/orderstatus" // registers orderstatus.updates
)

func main() { cli.Main() }
