package dockerservice

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/agents/directory-registration/registration"
	"github.com/ha-framework/ha-framework/ocf"
)

// Registration in Consul is directory-registration itself, run in-process
// with parameters derived from this resource: the same code, its
// parameters as the contract between the two agents.

// Registrator's labels, read from the container (which carries its image's
// labels) as defaults, so that images made for Registrator work unchanged.
const (
	labelServiceName     = "SERVICE_NAME"
	labelServiceTags     = "SERVICE_TAGS"
	labelCheckHTTP       = "SERVICE_CHECK_HTTP" // a path, checked on the service's address and port
	labelCheckTCP        = "SERVICE_CHECK_TCP"  // "true"
	labelCheckTTL        = "SERVICE_CHECK_TTL"
	labelCheckInterval   = "SERVICE_CHECK_INTERVAL"
	labelCheckTimeout    = "SERVICE_CHECK_TIMEOUT"
	labelDeregisterAfter = "SERVICE_CHECK_DEREGISTER_AFTER"
)

// registrationParams derives directory-registration's parameters from this
// resource's configuration and the container's labels.
func registrationParams(c *Config, labels map[string]string) (map[string]string, error) {
	p := map[string]string{"consul_address": c.ConsulAddress}
	if c.ConsulTokenFile != "" {
		p["token_file"] = c.ConsulTokenFile
	}
	name := c.ServiceName
	if name == "" {
		name = labels[labelServiceName]
	}
	if name == "" {
		name = imageBaseName(c.Image)
	}
	p["service_name"] = name
	port := c.ServicePort
	if port == 0 {
		var err error
		if port, err = publishedPort(c.Publish); err != nil {
			return nil, err
		}
	}
	p["service_port"] = strconv.Itoa(port)
	if c.ServiceAddress != "" {
		// Without it Consul gives the service its node's address: the
		// cluster address its agent advertises, never the host name's.
		p["service_address"] = c.ServiceAddress
	}
	tags := c.ServiceTags
	if len(tags) == 0 {
		tags = ocf.SplitList(labels[labelServiceTags])
	}
	if len(tags) > 0 {
		p["service_tags"] = strings.Join(tags, ",")
	}
	// Consul runs the checks from this node: the service's own address
	// if set, else loopback, where a published port answers too.
	host := c.ServiceAddress
	if host == "" {
		host = "127.0.0.1"
	}
	hostPort := net.JoinHostPort(host, strconv.Itoa(port))
	switch {
	case labels[labelCheckHTTP] != "":
		path := labels[labelCheckHTTP]
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		p["check_http"] = (&url.URL{Scheme: "http", Host: hostPort, Path: path}).String()
	case strings.EqualFold(labels[labelCheckTCP], "true"):
		p["check_tcp"] = hostPort
	case c.CheckHTTP != "":
		p["check_http"] = c.CheckHTTP
	case c.CheckTCP != "":
		p["check_tcp"] = c.CheckTCP
	}
	for label, param := range map[string]string{labelCheckTTL: "check_ttl", labelCheckInterval: "check_interval",
		labelCheckTimeout: "check_timeout", labelDeregisterAfter: "deregister_critical_service_after"} {
		if v := labels[label]; v != "" {
			p[param] = v
		}
	}
	return p, nil
}

// imageBaseName is Registrator's default service name: the image's last
// path element without tag or digest ("registry:5000/shop/web:1.4" → web).
func imageBaseName(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndexByte(image, '/'); i >= 0 {
		image = image[i+1:]
	}
	if i := strings.IndexByte(image, ':'); i >= 0 {
		image = image[:i]
	}
	return image
}

// publishedPort is the service port when service_port is unset: the host
// port of the only published port that has one.
func publishedPort(publish []string) (int, error) {
	port := 0
	for _, p := range publish {
		ps, err := parsePublish(p)
		if err != nil || ps.HostPort == 0 {
			continue
		}
		if port != 0 && port != ps.HostPort {
			return 0, ocf.Errorf(ocf.Misconfigured, "register=true with several published ports; set service_port")
		}
		port = ps.HostPort
	}
	if port == 0 {
		return 0, ocf.Errorf(ocf.Misconfigured, "register=true needs service_port (no published HOSTPORT:PORT to take it from)")
	}
	return port, nil
}

// runRegistration runs one action of directory-registration for this
// resource, within what is left of ctx, and returns its result as an
// error carrying its exit status (nil for success).
func runRegistration(ctx context.Context, r *ocf.Request[Config], action string, params map[string]string) error {
	env := map[string]string{"OCF_RESOURCE_TYPE": "directory-registration"}
	// What Pacemaker told this action, the resource's identity and
	// logging setup included; none of this resource's own parameters.
	for _, k := range []string{"OCF_ROOT", "OCF_RA_VERSION_MAJOR", "OCF_RA_VERSION_MINOR", "OCF_RESOURCE_INSTANCE",
		"OCF_RESOURCE_PROVIDER", "OCF_CHECK_LEVEL", "HA_RSCTMP", "HA_LOGFILE", "HA_DEBUGLOG", "HA_LOGFACILITY", "HA_debug", "HA_VARLIB"} {
		if v, ok := r.Env.Lookup(k); ok {
			env[k] = v
		}
	}
	for _, m := range []string{"interval", "on_node", "clone", "clone_max", "clone_node_max", "globally_unique"} {
		if v, ok := r.Env.Meta(m); ok {
			env["OCF_RESKEY_CRM_meta_"+m] = v
		}
	}
	if r.Action != ocf.ActionMonitor {
		delete(env, "OCF_RESKEY_CRM_meta_interval")
	}
	if dl, ok := ctx.Deadline(); ok {
		env["OCF_RESKEY_CRM_meta_timeout"] = strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1000), 10)
	}
	for k, v := range params {
		env["OCF_RESKEY_"+k] = v
	}
	var stderr bytes.Buffer
	code := registration.New().Run(ctx, ocf.Invocation{Args: []string{"directory-registration", action}, Env: ocf.MapEnv(env), Stderr: &stderr})
	if code == ocf.Success {
		return nil
	}
	reason := ""
	for _, line := range strings.Split(stderr.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "ocf-exit-reason:"); ok {
			reason = rest
		}
	}
	if reason == "" {
		reason = code.String()
	}
	if code == ocf.NotRunning {
		return &ocf.Error{Code: code, Reason: "not registered", Err: ocf.ErrNotRunning}
	}
	return &ocf.Error{Code: code, Reason: fmt.Sprintf("registration: %s", reason)}
}
