package dockerservice

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/ha-framework/ha-framework/ocf"
)

// The labels the agent puts on every container it creates. A container
// without labelResource equal to this resource's id is never touched.
const (
	labelPrefix   = "org.ha-framework."
	labelResource = labelPrefix + "resource"
	labelConfig   = labelPrefix + "config-hash"
	labelAgent    = labelPrefix + "agent"
)

// identity is which container belongs to this resource instance.
type identity struct {
	Resource string // the resource id the container is labelled with
	Name     string // the container's name
}

// identityOf derives the container's name and label from the resource
// instance. An anonymous clone runs one container per node whichever
// instance number Pacemaker gives it on that node, so the number is left
// out; a globally unique clone's instances are distinct containers.
func identityOf(r *ocf.Request[Config]) identity {
	inst := r.Env.Instance()
	base, num, isClone := strings.Cut(inst, ":")
	id := identity{Resource: base}
	if c, ok := r.Env.Clone(); ok && c.GloballyUnique && isClone {
		id.Resource = base + ":" + num
	}
	id.Name = r.Config.Name
	if id.Name == "" {
		id.Name = containerName(strings.ReplaceAll(id.Resource, ":", "-"))
	}
	return id
}

// spec is everything that makes a container what this resource wants. Its
// hash, stored as a label, tells at start whether an existing container
// can be kept.
type spec struct {
	Image   string      `json:"image"`    // as configured
	ImageID string      `json:"image_id"` // what it resolved to at start
	Command []string    `json:"command,omitempty"`
	Env     []string    `json:"env,omitempty"`
	Ports   []portSpec  `json:"ports,omitempty"`
	Mounts  []mountSpec `json:"mounts,omitempty"`
	Network string      `json:"network,omitempty"`
	User    string      `json:"user,omitempty"`
	Memory  int64       `json:"memory,omitempty"`
	CPUs    int64       `json:"nano_cpus,omitempty"`
	Labels  []string    `json:"labels,omitempty"` // sorted KEY=VALUE
}

// newSpec builds the spec from validated parameters, the environment read
// from env_file, and the resolved image id.
func newSpec(c *Config, env []string, imageID string) (spec, error) {
	s := spec{Image: c.Image, ImageID: imageID, Command: c.Command, Env: env, Network: c.Network, User: c.User}
	for _, p := range c.Publish {
		ps, err := parsePublish(p)
		if err != nil {
			return spec{}, ocf.Errorf(ocf.Misconfigured, "publish %q: %v", p, err)
		}
		s.Ports = append(s.Ports, ps)
	}
	for _, m := range c.Mounts {
		ms, err := parseMount(m)
		if err != nil {
			return spec{}, ocf.Errorf(ocf.Misconfigured, "mounts %q: %v", m, err)
		}
		s.Mounts = append(s.Mounts, ms)
	}
	var err error
	if c.Memory != "" {
		if s.Memory, err = parseBytes(c.Memory); err != nil {
			return spec{}, ocf.Errorf(ocf.Misconfigured, "memory: %v", err)
		}
	}
	if c.CPUs != "" {
		if s.CPUs, err = parseCPUs(c.CPUs); err != nil {
			return spec{}, ocf.Errorf(ocf.Misconfigured, "cpus: %v", err)
		}
	}
	for _, l := range c.Labels {
		if _, _, err := parseLabel(l); err != nil {
			return spec{}, ocf.Errorf(ocf.Misconfigured, "labels %q: %v", l, err)
		}
		s.Labels = append(s.Labels, l)
	}
	sort.Strings(s.Labels)
	return s, nil
}

// Hash is a digest of the whole spec, environment values included: a
// changed secret must replace the container too. Anyone who can read the
// label can read the container's environment through the same API.
func (s spec) Hash() string {
	b, _ := json.Marshal(s) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// createOptions renders the spec as an Engine API create request.
func (s spec) createOptions(id identity) client.ContainerCreateOptions {
	labels := map[string]string{}
	for _, l := range s.Labels {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	labels[labelResource] = id.Resource
	labels[labelConfig] = s.Hash()
	labels[labelAgent] = "docker-service"

	cfg := &container.Config{Image: s.Image, Env: s.Env, User: s.User, Labels: labels}
	if len(s.Command) > 0 {
		cfg.Cmd = s.Command
	}
	host := &container.HostConfig{
		// Pacemaker is the only supervisor: a container that dockerd
		// restarted behind its back would hide failures from it.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		NetworkMode:   container.NetworkMode(s.Network),
		Resources:     container.Resources{Memory: s.Memory, NanoCPUs: s.CPUs},
	}
	for _, p := range s.Ports {
		port, _ := network.PortFrom(uint16(p.ContainerPort), network.IPProtocol(p.Proto))
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
			host.PortBindings = network.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		b := network.PortBinding{}
		if p.HostIP != "" {
			b.HostIP = netip.MustParseAddr(p.HostIP)
		}
		if p.HostPort != 0 {
			b.HostPort = strconv.Itoa(p.HostPort)
		}
		host.PortBindings[port] = append(host.PortBindings[port], b)
	}
	for _, m := range s.Mounts {
		mt := mount.Mount{Type: mount.TypeVolume, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if m.Bind() {
			mt.Type = mount.TypeBind
		}
		host.Mounts = append(host.Mounts, mt)
	}
	return client.ContainerCreateOptions{Name: id.Name, Config: cfg, HostConfig: host}
}
