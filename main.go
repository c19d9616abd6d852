// Command kafkasub is one binary for the whole project: the operator (manager), the
// consumer every pod runs, and the tools a person drives it with (demo, dev, produce, dlq,
// db). A team's own image is this file with its handlers' packages imported.
package main

import "github.com/kafkasub/kafkasub/consumer/cli"

func main() { cli.Main() }
