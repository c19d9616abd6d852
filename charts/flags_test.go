package charts

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kafkasub/kafkasub/controllers"
)

// TestManagerAcceptsTheRenderedArgs parses the command line of every rendered operator
// Deployment (chart variants and config/default) with the real `kafkasub manager`
// command, so a flag the chart passes but the manager does not know fails here, not in a
// crash-looping pod.
func TestManagerAcceptsTheRenderedArgs(t *testing.T) {
	deployments := map[string]*appsv1.Deployment{}
	for name, values := range map[string]map[string]any{
		"chart defaults":            nil,
		"chart with three replicas": {"replicaCount": 3},
		"chart without metrics":     {"metrics": map[string]any{"enabled": false}},
		"chart with a console log":  {"logEncoder": "console", "logLevel": 2},
		"chart watching namespaces": {"watchNamespaces": []any{"team-a", "team-b"}},
	} {
		deployments[name] = mustRender(t, values).deployment(t)
	}
	for _, o := range kustomizeBuild(t, "config/default") {
		if o.GetKind() == "Deployment" {
			var d appsv1.Deployment
			toTyped(t, o, &d)
			deployments["config/default"] = &d
		}
	}
	if deployments["config/default"] == nil {
		t.Fatal("config/default renders no Deployment")
	}
	for name, d := range deployments {
		t.Run(name, func(t *testing.T) {
			c := manager(t, d)
			if len(c.Command) != 1 || c.Command[0] != "/kafkasub" || len(c.Args) == 0 || c.Args[0] != "manager" {
				t.Fatalf("command %v args %v, want /kafkasub manager ...", c.Command, c.Args)
			}
			cmd := controllers.NewManagerCommand()
			if err := cmd.ParseFlags(c.Args[1:]); err != nil {
				t.Fatalf("kafkasub manager refuses the args %v: %v", c.Args[1:], err)
			}
			if name == "chart watching namespaces" {
				got, err := cmd.Flags().GetStringSlice(controllers.FlagWatchNamespaces)
				if err != nil || !slices.Equal(got, []string{"team-a", "team-b"}) {
					t.Errorf("the manager reads --%s as %v (%v), want [team-a team-b]", controllers.FlagWatchNamespaces, got, err)
				}
			}
			if name == "chart defaults" {
				if got, _ := cmd.Flags().GetString(controllers.FlagConsumerImage); got != c.Image {
					t.Errorf("the manager's consumer image is %q, want its own image %q", got, c.Image)
				}
			}
		})
	}
}
