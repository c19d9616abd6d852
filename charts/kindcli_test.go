package charts

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/cli"
	"github.com/kafkasub/kafkasub/controllers"
)

// TestKindManifestsRunRealSubcommands parses every `/kafkasub ...` command line in the
// kind manifests (the database Job and the producer pod, whose payload hack/kind-e2e.sh
// passes as the only argument) with the real kafkasub command tree, and checks that the
// secrets reach them under the consumer's environment variable names.
func TestKindManifestsRunRealSubcommands(t *testing.T) {
	root := &cobra.Command{Use: "kafkasub"}
	root.AddCommand(controllers.NewManagerCommand())
	root.AddCommand(cli.Commands()...)

	var containers []corev1.Container
	var job batchv1.Job
	toTyped(t, decodeFile(t, "hack/kind/db-setup.yaml")[0], &job)
	containers = append(containers, job.Spec.Template.Spec.InitContainers...)
	containers = append(containers, job.Spec.Template.Spec.Containers...)
	var pod corev1.Pod
	toTyped(t, decodeFile(t, "hack/kind/producer-pod.json")[0], &pod)
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.Containers[0].Args) != 0 {
		t.Fatalf("the producer pod must have one container without args (the script passes the payload): %+v", pod.Spec.Containers)
	}
	producer := pod.Spec.Containers[0]
	producer.Args = []string{`{"product_code": "KB-MECH-001", "inventory_count": 25}`}
	containers = append(containers, producer)

	var subcommands []string
	for _, c := range containers {
		t.Run(c.Name, func(t *testing.T) {
			line := append(slices.Clone(c.Command), c.Args...)
			if len(line) < 2 || line[0] != "/kafkasub" {
				t.Fatalf("command line %q does not run /kafkasub", line)
			}
			cmd, rest, err := root.Find(line[1:])
			if err != nil || cmd == root {
				t.Fatalf("no kafkasub subcommand for %q: %v", line[1:], err)
			}
			subcommands = append(subcommands, cmd.CommandPath())
			if err := cmd.ParseFlags(rest); err != nil {
				t.Fatalf("%s refuses %q: %v", cmd.CommandPath(), rest, err)
			}
			if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
				t.Errorf("%s refuses the arguments %q: %v", cmd.CommandPath(), cmd.Flags().Args(), err)
			}
			if cmd.Parent().Name() == "db" {
				if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
					return e.Name == consumer.EnvDatabaseDSN && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
				}) {
					t.Errorf("%s gets no %s from a Secret: %+v", cmd.CommandPath(), consumer.EnvDatabaseDSN, c.Env)
				}
			}
		})
	}
	for _, want := range []string{"kafkasub db migrate", "kafkasub db seed", "kafkasub produce"} {
		if !slices.Contains(subcommands, want) {
			t.Errorf("the kind manifests never run %q (they run %v)", want, subcommands)
		}
	}
}
