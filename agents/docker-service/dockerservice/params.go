package dockerservice

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/ha-framework/ha-framework/ocf"
)

// Config is the decoded instance parameters.
type Config struct {
	Image      string
	Name       string
	Command    []string
	EnvFile    string
	Publish    []string
	Mounts     []string
	Network    string
	User       string
	Memory     string
	CPUs       string
	Labels     []string
	Pull       string
	DockerHost string

	CheckTCP  string
	CheckHTTP string

	Register        bool
	ConsulAddress   string
	ConsulTokenFile string
	ServiceName     string
	ServiceAddress  string
	ServicePort     int
	ServiceTags     []string
}

// The values of pull.
const (
	pullNever   = "never"
	pullMissing = "missing"
	pullAlways  = "always"
)

// defaultHost is dockerd's own default socket.
const defaultHost = "unix:///var/run/docker.sock"

func params(c *Config) []ocf.Param {
	return []ocf.Param{
		ocf.String(&c.Image, "image", "Image to run", ocf.Required(),
			ocf.Long("The image reference, such as shop/web:1.4 or registry.example.com/web@sha256:...; see pull for when it is pulled.")),
		ocf.String(&c.Name, "name", "Container name", ocf.Check(validContainerName),
			ocf.Long("Name of the container on this node. Default: the resource id; a globally unique clone's instance adds -N. "+
				"The agent only ever touches a container it labelled as this resource's: a container of that name created otherwise is an error, never removed.")),
		ocf.List(&c.Command, "command", "Command and arguments",
			ocf.Long("Replaces the image's CMD: words separated by spaces or commas (a word cannot hold either). Default: the image's CMD.")),
		ocf.String(&c.EnvFile, "env_file", "Environment file", ocf.AbsolutePath(),
			ocf.Long("File of KEY=VALUE lines (# comments, values taken literally) for the container's environment. "+
				"It may hold secrets, so like a token file it must be owned by root and not readable by group or others; "+
				"its values never appear in the CIB, in arguments or in logs. "+
				"A change of its content replaces the container at the next start.")),
		ocf.List(&c.Publish, "publish", "Published ports",
			ocf.Long("Ports to publish, as docker run -p: PORT, HOSTPORT:PORT or IP:HOSTPORT:PORT, optionally /udp; IPv6 as [::1]:8080:80.")),
		ocf.List(&c.Mounts, "mounts", "Mounts",
			ocf.Long("SOURCE:TARGET or SOURCE:TARGET:ro, SOURCE an absolute host path (a bind mount; it must exist) or a volume name.")),
		ocf.String(&c.Network, "network", "Network",
			ocf.Long("Network to attach the container to: host, none, bridge or a network's name. Default: the daemon's default.")),
		ocf.String(&c.User, "user", "User in the container", ocf.Long("USER[:GROUP], by name or number. Default: the image's USER.")),
		ocf.String(&c.Memory, "memory", "Memory limit", ocf.Check(func(v string) error { _, err := parseBytes(v); return err }),
			ocf.Long("Memory limit such as 512m or 2g. Default: none.")),
		ocf.String(&c.CPUs, "cpus", "CPU limit", ocf.Check(func(v string) error { _, err := parseCPUs(v); return err }),
			ocf.Long("Number of CPUs the container may use, such as 1.5. Default: none.")),
		ocf.List(&c.Labels, "labels", "Container labels",
			ocf.Long("KEY=VALUE labels added to the container (a value cannot hold spaces or commas); the image's labels stay.")),
		ocf.Select(&c.Pull, "pull", "When to pull the image", []string{pullNever, pullMissing, pullAlways}, ocf.Default(pullMissing),
			ocf.Long("never: the image must be on the node; missing: pull it if absent; always: pull at every start "+
				"(if the registry cannot be reached, a local copy is used). Pulls happen within the start timeout.")),
		ocf.String(&c.DockerHost, "docker_host", "Daemon socket", ocf.Default(defaultHost), ocf.Check(dockerHost),
			ocf.Long("The Docker Engine API socket: unix:///PATH. Podman's Docker-compatible socket works too (unix:///run/podman/podman.sock).")),
		ocf.String(&c.CheckTCP, "check_tcp", "Readiness check: TCP address",
			ocf.Check(func(v string) error { _, _, err := splitHostPort(v); return err }),
			ocf.Long("HOST:PORT that accepts connections once the service is ready, for images without a HEALTHCHECK. "+
				"Start waits for it; a monitor at depth 10 checks it.")),
		ocf.String(&c.CheckHTTP, "check_http", "Readiness check: HTTP URL", ocf.Check(httpURL),
			ocf.Long("http:// URL that answers 200 once the service is ready, for images without a HEALTHCHECK. "+
				"Start waits for it; a monitor at depth 10 checks it.")),

		ocf.Bool(&c.Register, "register", "Register the service in Consul", ocf.Default("false"),
			ocf.Long("Registers the container's service in the local Consul agent once it is ready, and deregisters it before the container stops, "+
				"with the same code as ocf:ha-framework:directory-registration. The image's Registrator labels "+
				"(SERVICE_NAME, SERVICE_TAGS, SERVICE_CHECK_HTTP, SERVICE_CHECK_TCP, SERVICE_CHECK_INTERVAL, SERVICE_CHECK_TIMEOUT, SERVICE_CHECK_TTL) are the defaults; "+
				"without a check label, check_http or check_tcp becomes the Consul check. A monitor fails when the running container is not registered.")),
		ocf.String(&c.ConsulAddress, "consul_address", "Local Consul agent's HTTP API (with register)", ocf.Default("127.0.0.1:8500")),
		ocf.String(&c.ConsulTokenFile, "consul_token_file", "Consul ACL token file (with register)", ocf.AbsolutePath(),
			ocf.Long("File holding the ACL token for registering; mode 0600, owned by root.")),
		ocf.String(&c.ServiceName, "service_name", "Service name in Consul (with register)",
			ocf.Long("Default: the SERVICE_NAME label, else the image's name without registry, path and tag.")),
		ocf.String(&c.ServiceAddress, "service_address", "Service address in Consul (with register)",
			ocf.Long("Address clients use. Default: none, so Consul uses its node's address (the cluster address its agent advertises); "+
				"never a host name's address or a container's.")),
		ocf.Int(&c.ServicePort, "service_port", "Service port in Consul (with register)", ocf.Range(0, 65535),
			ocf.Long("Default: the host port of the only published HOSTPORT:PORT.")),
		ocf.List(&c.ServiceTags, "service_tags", "Service tags in Consul (with register)",
			ocf.Long("Default: the SERVICE_TAGS label, split at commas.")),
	}
}

// socketPath returns the file of a unix:// docker_host.
func socketPath(host string) string { return strings.TrimPrefix(host, "unix://") }

func dockerHost(v string) error {
	p, ok := strings.CutPrefix(v, "unix://")
	if !ok || !filepath.IsAbs(p) {
		return fmt.Errorf("must be unix:///ABSOLUTE/PATH")
	}
	return nil
}

func splitHostPort(v string) (string, int, error) {
	u, err := url.Parse("tcp://" + v)
	if err != nil || u.Hostname() == "" || u.Port() == "" || u.Path != "" || u.User != nil {
		return "", 0, fmt.Errorf("must be HOST:PORT")
	}
	p, err := portNumber(u.Port())
	if err != nil {
		return "", 0, err
	}
	return u.Hostname(), p, nil
}

func httpURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil {
		return fmt.Errorf("must be an http:// URL without credentials")
	}
	return nil
}
