// Package dockerservice is ocf:ha-framework:docker-service: one container
// as a Pacemaker resource, run through the Docker Engine API (dockerd, or
// Podman's compatible socket) with Pacemaker as its only supervisor.
//
// Every container it creates carries the labels org.ha-framework.resource
// (the resource id) and org.ha-framework.config-hash (a digest of the
// image, command, environment, ports, mounts and limits). Start keeps a
// running container whose digest matches and replaces one that differs;
// no action ever touches a container without this resource's label.
//
// When the daemon cannot be reached, the agent falls back to the
// container's main process, recorded at start under HA_RSCTMP: a monitor
// reports "not running" only when that process is gone, and a stop ends
// it with signals.
package dockerservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ha-framework/ha-framework/internal/version"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/daemon"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// New returns the agent declaration.
func New() *ocf.Agent[Config] {
	return &ocf.Agent[Config]{
		Name: "docker-service", Version: version.Version,
		ShortDesc: "A container run through the Docker Engine API",
		LongDesc: "Runs one container from image as a cluster resource, through dockerd's API (or Podman's Docker-compatible socket), " +
			"with restart policy \"no\": Pacemaker alone restarts and moves it. The container is labelled with the resource and a digest of its configuration; " +
			"start keeps a matching running container and replaces a different one, and the agent never touches a container it did not create. " +
			"With a HEALTHCHECK in the image, start waits until healthy and a monitor fails when unhealthy; otherwise check_tcp or check_http tell readiness.",
		Exclusive: true,
		Params:    params,
		Operations: []ocf.Operation{
			// Start may pull an image and wait for a health check; stop
			// gives the container most of its timeout to exit.
			{Name: ocf.ActionStart, Timeout: 120 * time.Second},
			{Name: ocf.ActionStop, Timeout: 60 * time.Second},
			{Name: ocf.ActionMonitor, Timeout: 20 * time.Second, Interval: 10 * time.Second},
			// Depth 10 also runs check_tcp/check_http.
			{Name: ocf.ActionMonitor, Timeout: 30 * time.Second, Interval: 60 * time.Second, Depth: 10},
		},
		Validate: validate,
		Start:    start,
		Stop:     stop,
		Monitor:  monitor,
	}
}

// validate checks that a daemon can exist on this node. It reads no file
// and asks the daemon nothing: it runs before every monitor.
func validate(ctx context.Context, r *ocf.Request[Config]) error {
	// The list parameters are checked here rather than while decoding,
	// to name the bad entry in a reason that fits Pacemaker's 128 bytes.
	if _, err := newSpec(r.Config, nil, ""); err != nil {
		return err
	}
	if r.Config.Register {
		if _, err := registrationParams(r.Config, nil); err != nil {
			return err
		}
	}
	if r.Env.FailHaveBinary() {
		return ocf.Errorf(ocf.NotInstalled, "dockerd not found (OCF_TESTER_FAIL_HAVE_BINARY); install docker.io or podman")
	}
	if _, err := os.Stat(socketPath(r.Config.DockerHost)); err == nil {
		return nil
	}
	// No socket: a stopped daemon, or no container engine at all. Only
	// the second is "not installed", which a probe reads as not running.
	for _, bin := range []string{"dockerd", "podman"} {
		if _, err := r.LookPath(bin, ""); err == nil {
			return nil
		}
		for _, dir := range []string{"/usr/bin/", "/usr/sbin/", "/usr/local/bin/"} {
			if _, err := os.Stat(dir + bin); err == nil {
				return nil
			}
		}
	}
	return ocf.Errorf(ocf.NotInstalled, "no container engine here: %s is absent, dockerd and podman are not installed", socketPath(r.Config.DockerHost))
}

func start(ctx context.Context, r *ocf.Request[Config]) error {
	c, id := r.Config, identityOf(r)
	var env []string
	if c.EnvFile != "" {
		text, err := ocf.ReadSecretFile(c.EnvFile, "env_file")
		if err != nil {
			return err
		}
		if env, err = parseEnvFile([]byte(text)); err != nil {
			return ocf.Errorf(ocf.InvalidArgs, "env_file %s: %v", c.EnvFile, err)
		}
	}
	cli, err := dial(c.DockerHost)
	if err != nil {
		return err
	}
	defer cli.Close()

	imageID, err := ensureImage(ctx, r, cli)
	if err != nil {
		return err
	}
	want, err := newSpec(c, env, imageID)
	if err != nil {
		return err
	}
	hash := want.Hash()

	cur, err := inspectByName(ctx, cli, id.Name)
	switch {
	case err == nil:
		ins := cur.Container
		if !ours(ins.Config, id) {
			return ocf.Errorf(ocf.InvalidArgs, "container %s exists and is not this resource's; remove or rename it, or set name", id.Name)
		}
		if ins.State != nil && ins.State.Running && ins.Config.Labels[labelConfig] == hash {
			r.Log.Info("container already running with this configuration", "container", id.Name)
			if err := awaitReady(ctx, r, cli, id, ins.ID); err != nil {
				return err
			}
			return register(ctx, r, ins.Config.Labels, ocf.ActionStart)
		}
		r.Log.Info("replacing container", "container", id.Name, "running", ins.State != nil && ins.State.Running)
		// The old container gets a third of the start's time to exit,
		// leaving the rest to the new one.
		if err := remove(ctx, cli, ins.ID, stopGrace(ctx)/3); err != nil {
			return err
		}
	case isNotFound(err):
	case unreachable(err):
		return ocf.Errorf(ocf.GenericFailure, "%w", daemonDown(c.DockerHost, err))
	default:
		return ocf.Errorf(ocf.GenericFailure, "inspecting container %s: %w", id.Name, err)
	}

	created, err := cli.ContainerCreate(ctx, want.createOptions(id))
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "creating container %s: %w", id.Name, err)
	}
	for _, w := range created.Warnings {
		r.Log.Warn("dockerd warns about the container", "container", id.Name, "warning", w)
	}
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		r.Log.Error("the engine could not start the container", "container", id.Name, "err", err)
		return &ocf.Error{Code: ocf.GenericFailure, Reason: "container did not start: " + engineMessage(err), Err: err}
	}
	r.Log.Info("container started", "container", id.Name, "id", shortID(created.ID), "image", c.Image)
	if err := awaitReady(ctx, r, cli, id, created.ID); err != nil {
		return err
	}
	// The container carries its image's labels, Registrator's among them.
	res, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "inspecting container %s: %w", id.Name, err)
	}
	return register(ctx, r, res.Container.Config.Labels, ocf.ActionStart)
}

// register runs a registration action when register is set: start
// registers, stop deregisters, monitor checks the registration.
func register(ctx context.Context, r *ocf.Request[Config], labels map[string]string, action string) error {
	if !r.Config.Register {
		return nil
	}
	p, err := registrationParams(r.Config, labels)
	if err != nil {
		return err
	}
	return runRegistration(ctx, r, action, p)
}

// ensureImage applies the pull policy and returns the image's id.
func ensureImage(ctx context.Context, r *ocf.Request[Config], cli *client.Client) (string, error) {
	c := r.Config
	img, err := cli.ImageInspect(ctx, c.Image)
	switch {
	case err == nil && c.Pull != pullAlways:
		return img.ID, nil
	case err != nil && unreachable(err):
		return "", ocf.Errorf(ocf.GenericFailure, "%w", daemonDown(c.DockerHost, err))
	case err != nil && !isNotFound(err):
		return "", ocf.Errorf(ocf.GenericFailure, "inspecting image %s: %w", c.Image, err)
	case err != nil && c.Pull == pullNever:
		return "", ocf.Errorf(ocf.NotInstalled, "image %s is not on this node and pull=never; load it or set pull=missing", c.Image)
	}
	local := err == nil
	// With a copy on the node (pull=always), a registry that does not
	// answer must leave time to start that copy: the pull gets half of
	// the time left. Without one, it may take all of it.
	pctx := ctx
	if local {
		var cancel context.CancelFunc
		pctx, cancel = within(ctx, 0.5)
		defer cancel()
	}
	perr := pull(pctx, cli, c.Image)
	if perr != nil {
		if local {
			r.Log.Warn("pull failed; using the image on this node", "image", c.Image, "err", perr)
			return img.ID, nil
		}
		if errors.Is(perr, context.DeadlineExceeded) || ctx.Err() != nil {
			return "", ocf.Errorf(ocf.GenericFailure, "pulling image %s: not done before the start timeout", c.Image)
		}
		return "", ocf.Errorf(ocf.GenericFailure, "pulling image %s: %w", c.Image, perr)
	}
	img, err = cli.ImageInspect(ctx, c.Image)
	if err != nil {
		return "", ocf.Errorf(ocf.GenericFailure, "inspecting image %s after pull: %w", c.Image, err)
	}
	return img.ID, nil
}

// pull pulls ref and waits until the engine has it.
func pull(ctx context.Context, cli *client.Client, ref string) error {
	resp, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return err
	}
	// The stream may end without an error when the context ended it.
	return ctx.Err()
}

// ours reports whether the container was created for this resource.
func ours(cfg *container.Config, id identity) bool {
	return cfg != nil && cfg.Labels[labelResource] == id.Resource
}

// remove stops (with grace seconds between the stop signal and SIGKILL)
// and deletes a container of this resource.
func remove(ctx context.Context, cli *client.Client, cid string, grace int) error {
	sctx, cancel := within(ctx, 0.9)
	_, err := cli.ContainerStop(sctx, cid, client.ContainerStopOptions{Timeout: &grace})
	cancel()
	if err != nil && !isNotFound(err) {
		return ocf.Errorf(ocf.GenericFailure, "stopping container %s: %w", shortID(cid), err)
	}
	_, err = cli.ContainerRemove(ctx, cid, client.ContainerRemoveOptions{Force: true})
	if err != nil && !isNotFound(err) {
		return ocf.Errorf(ocf.GenericFailure, "removing container %s: %w", shortID(cid), err)
	}
	return nil
}

// stopGrace is how long the container may take to exit after its stop
// signal: most of the time left, keeping a quarter (at least a second,
// at most 10 s) for dockerd's SIGKILL and the removal.
func stopGrace(ctx context.Context) int {
	dl, ok := ctx.Deadline()
	if !ok {
		return 10
	}
	left := time.Until(dl)
	keep := min(max(left/4, time.Second), 10*time.Second)
	return max(int((left-keep)/time.Second), 0)
}

// awaitReady waits until the container is ready: healthy if its image
// has a HEALTHCHECK, else accepting check_tcp/check_http if set, else
// running. It fails as soon as the container exits or turns unhealthy.
func awaitReady(ctx context.Context, r *ocf.Request[Config], cli *client.Client, id identity, cid string) error {
	wait := 50 * time.Millisecond
	recorded := false
	for {
		res, err := cli.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return ocf.Errorf(ocf.GenericFailure, "container %s not ready before the start timeout: %w", id.Name, err)
			}
			return ocf.Errorf(ocf.GenericFailure, "inspecting container %s: %w", id.Name, err)
		}
		st := res.Container.State
		if st == nil || !st.Running {
			// A failed start, not a stopped resource: the reason stays
			// the whole exit reason.
			return &ocf.Error{Code: ocf.GenericFailure, Reason: ocf.ReasonOf(exited(ctx, cli, res.Container))}
		}
		if !recorded {
			if err := saveRecord(r, cid, st.Pid); err != nil {
				r.Log.Warn("cannot record the container's process; with dockerd down, monitors will not know", "err", err)
			}
			recorded = true
		}
		var last error
		switch {
		case st.Health != nil && st.Health.Status == container.Unhealthy:
			return ocf.Errorf(ocf.GenericFailure, "container is unhealthy: %s", healthOutput(st.Health))
		case st.Health != nil && st.Health.Status == container.Healthy:
			return nil
		case st.Health != nil && st.Health.Status != container.NoHealthcheck && st.Health.Status != "":
			// Podman reports an empty status without a health check.
			last = errors.New("health check still starting")
		default:
			last = ready(ctx, r)
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ocf.Errorf(ocf.GenericFailure, "container %s not ready before the start timeout: %v", id.Name, last)
		case <-time.After(wait):
		}
		wait = min(wait*3/2, time.Second)
	}
}

// exited describes a container that is not running, with its last output
// line, as a "not running" error.
func exited(ctx context.Context, cli *client.Client, ins container.InspectResponse) error {
	code := -1
	if ins.State != nil {
		code = ins.State.ExitCode
		if ins.State.Status == container.StateCreated {
			return &ocf.Error{Code: ocf.NotRunning, Reason: "container created but never started", Err: ocf.ErrNotRunning}
		}
	}
	lctx, cancel := within(ctx, 0.5)
	defer cancel()
	line := lastLogLine(lctx, cli, ins.ID, 72)
	if line == "" {
		line = "(no output)"
	}
	return &ocf.Error{Code: ocf.NotRunning, Reason: fmt.Sprintf("container exited (%d): %s", code, line), Err: ocf.ErrNotRunning}
}

func healthOutput(h *container.Health) string {
	if len(h.Log) == 0 {
		return "no check result yet"
	}
	out := lastLine(h.Log[len(h.Log)-1].Output, 64)
	if out == "" {
		out = "check exited " + strconv.Itoa(h.Log[len(h.Log)-1].ExitCode)
	}
	return out
}

// ready runs the declared readiness checks; nil when there are none.
func ready(ctx context.Context, r *ocf.Request[Config]) error {
	c := r.Config
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c.CheckTCP != "" {
		var d net.Dialer
		conn, err := d.DialContext(cctx, "tcp", c.CheckTCP)
		if err != nil {
			return fmt.Errorf("check_tcp %s: %v", c.CheckTCP, err)
		}
		conn.Close()
	}
	if c.CheckHTTP != "" {
		// The SDK's HTTP check; not its TCP check, which wants the
		// daemon's own process to hold the listening socket, while a
		// container's published port is held by dockerd's proxy.
		check := daemon.HTTP(func(c *Config) string { return c.CheckHTTP }, http.StatusOK)
		if err := check(cctx, r, daemon.Process{}); err != nil {
			return fmt.Errorf("check_http: %w", err)
		}
	}
	return nil
}

func stop(ctx context.Context, r *ocf.Request[Config]) error {
	c, id := r.Config, identityOf(r)
	cli, err := dial(c.DockerHost)
	if err != nil {
		return offlineStop(ctx, r, err)
	}
	defer cli.Close()
	ictx, cancel := within(ctx, 0.3)
	cur, err := inspectByName(ictx, cli, id.Name)
	cancel()
	switch {
	case isNotFound(err):
		deregister(ctx, r, nil)
		_ = os.Remove(recordPath(r))
		return nil
	case err != nil && unreachable(err):
		deregister(ctx, r, nil)
		return offlineStop(ctx, r, daemonDown(c.DockerHost, err))
	case err != nil:
		return ocf.Errorf(ocf.GenericFailure, "inspecting container %s: %w", id.Name, err)
	case !ours(cur.Container.Config, id):
		r.Log.Warn("a container of this name is not this resource's; left alone", "container", id.Name)
		deregister(ctx, r, nil)
		return nil
	}
	// Out of the directory before the container stops, so that no
	// client is sent to a service going down.
	deregister(ctx, r, cur.Container.Config.Labels)
	if err := remove(ctx, cli, cur.Container.ID, stopGrace(ctx)); err != nil {
		if unreachable(err) {
			return offlineStop(ctx, r, daemonDown(c.DockerHost, err))
		}
		return err
	}
	_ = os.Remove(recordPath(r))
	r.Log.Info("container stopped and removed", "container", id.Name)
	return nil
}

// deregister withdraws the registration, within half the time left. A
// failure is logged, never returned: a failed stop gets the node fenced,
// while a registration left behind turns critical once the service is
// gone and Consul removes it after deregister_critical_service_after.
func deregister(ctx context.Context, r *ocf.Request[Config], labels map[string]string) {
	if !r.Config.Register {
		return
	}
	dctx, cancel := within(ctx, 0.5)
	defer cancel()
	if err := register(dctx, r, labels, ocf.ActionStop); err != nil {
		r.Log.Warn("deregistration failed; Consul removes the registration once its checks stay critical", "reason", ocf.ReasonOf(err))
		return
	}
	r.Log.Info("registration withdrawn")
}

// offlineStop ends the container without the daemon: its recorded main
// process, if still alive, gets SIGTERM then SIGKILL (the kernel then ends
// every process of its pid namespace). The record stays, so that the
// monitors after the stop see the process gone.
func offlineStop(ctx context.Context, r *ocf.Request[Config], why error) error {
	proc, ok := loadRecord(r)
	if !ok || !alive(proc) {
		r.Log.Warn("daemon unreachable; no process of this container runs", "reason", why)
		return nil
	}
	r.Log.Warn("daemon unreachable; signalling the container's process", "pid", proc.PID, "reason", why)
	opts := process.StopOptions{Grace: time.Duration(stopGrace(ctx)) * time.Second, Identity: proc}
	if err := process.Stop(ctx, proc.PID, opts); err != nil {
		return ocf.Errorf(ocf.GenericFailure, "%v; container process %d: %w", why, proc.PID, err)
	}
	return nil
}

func monitor(ctx context.Context, r *ocf.Request[Config]) (ocf.State, error) {
	c, id := r.Config, identityOf(r)
	if verr := r.ValidationErr(); ocf.CodeOf(verr) == ocf.NotInstalled {
		// No engine on this node: only a process recorded at start can
		// still be running (a probe reads the error as not running).
		if proc, ok := loadRecord(r); ok && alive(proc) {
			return ocf.Running, ocf.Errorf(ocf.Degraded, "%v; container process %d still runs", ocf.ReasonOf(verr), proc.PID)
		}
		return ocf.Stopped, verr
	}
	cli, err := dial(c.DockerHost)
	if err != nil {
		return ocf.Stopped, err
	}
	defer cli.Close()
	ictx, cancel := within(ctx, 0.5)
	cur, err := inspectByName(ictx, cli, id.Name)
	cancel()
	switch {
	case isNotFound(err):
		withdrawStale(ctx, r, cli, nil)
		return ocf.Stopped, nil
	case err != nil && unreachable(err):
		return offlineMonitor(r, daemonDown(c.DockerHost, err))
	case err != nil:
		return ocf.Stopped, ocf.Errorf(ocf.GenericFailure, "inspecting container %s: %w", id.Name, err)
	}
	ins := cur.Container
	if !ours(ins.Config, id) {
		// Not ours, so not this resource: start will refuse the name.
		return ocf.Stopped, nil
	}
	st := ins.State
	switch {
	case st == nil || !st.Running:
		withdrawStale(ctx, r, cli, ins.Config.Labels)
		return ocf.Stopped, exited(ctx, cli, ins)
	case st.Paused:
		return ocf.Running, ocf.Errorf(ocf.GenericFailure, "container %s is paused", id.Name)
	case st.Health != nil && st.Health.Status == container.Unhealthy:
		return ocf.Running, ocf.Errorf(ocf.GenericFailure, "container is unhealthy: %s", healthOutput(st.Health))
	}
	if proc, ok := loadRecord(r); !ok || proc.PID != st.Pid {
		// Started before this boot's state directory existed, or by an
		// older version: record it now, for when the daemon is down.
		if err := saveRecord(r, ins.ID, st.Pid); err != nil {
			r.Log.Warn("cannot record the container's process", "err", err)
		}
	}
	if r.CheckLevel() >= 10 {
		if err := ready(ctx, r); err != nil {
			return ocf.Running, ocf.Errorf(ocf.GenericFailure, "container %s: %v", id.Name, err)
		}
	}
	if r.Action == ocf.ActionMonitor {
		// The registration is part of the resource: a running container
		// that discovery does not know is a failure.
		if err := register(ctx, r, ins.Config.Labels, ocf.ActionMonitor); err != nil {
			if ocf.CodeOf(err) == ocf.NotRunning {
				return ocf.Running, ocf.Errorf(ocf.GenericFailure, "container runs but is not registered in Consul")
			}
			return ocf.Running, err
		}
	}
	return ocf.Running, nil
}

// withdrawStale withdraws the registration a probe finds while the
// container is not running: a container that died while Pacemaker was
// down. A node that lost power and came back (its Consul agent restores
// registrations from its data directory) is the registration probe's own
// case: without a record of this boot it withdraws the registration
// itself and answers "not running". The probe still reports
// "not running": reporting a failure instead (so that Pacemaker's stop
// deregisters) makes Pacemaker believe the resource active here as well
// as where it runs, and its recovery of a resource active on two nodes
// stops both. The container is known not to run and the registration is
// this resource's (directory-registration's ownership rules), so nothing
// a client could use is lost. A failure is logged: Consul removes a
// registration whose check stays critical after
// deregister_critical_service_after. Without the container (labels nil),
// the image's labels name the service.
func withdrawStale(ctx context.Context, r *ocf.Request[Config], cli *client.Client, labels map[string]string) {
	if !r.Config.Register || !r.IsProbe() {
		return
	}
	if labels == nil {
		ictx, cancel := within(ctx, 0.3)
		if img, err := cli.ImageInspect(ictx, r.Config.Image); err == nil && img.Config != nil {
			labels = img.Config.Labels
		}
		cancel()
	}
	switch err := register(ctx, r, labels, ocf.ActionMonitor); ocf.CodeOf(err) {
	case ocf.Success, ocf.Degraded:
	case ocf.NotRunning:
		return
	default:
		r.Log.Info("cannot tell whether the stopped container is still registered", "reason", ocf.ReasonOf(err))
		return
	}
	p, err := registrationParams(r.Config, labels)
	if err != nil {
		return
	}
	// Nothing to drain: the container does not run.
	p["drain_period"] = "0"
	dctx, cancel := within(ctx, 0.8)
	defer cancel()
	if err := runRegistration(dctx, r, ocf.ActionStop, p); err != nil {
		r.Log.Warn("container not running but still registered; withdrawing the registration failed", "reason", ocf.ReasonOf(err))
		return
	}
	r.Log.Warn("container not running but still registered; registration withdrawn")
}

// offlineMonitor answers from the recorded process when the daemon does
// not. It reports "not running" only when it knows: the process is gone
// (or, after a stop, that nothing can be running).
func offlineMonitor(r *ocf.Request[Config], why error) (ocf.State, error) {
	proc, ok := loadRecord(r)
	switch {
	case ok && alive(proc):
		return ocf.Running, ocf.Errorf(ocf.Degraded, "%v; container process %d still runs", why, proc.PID)
	case ok:
		return ocf.Stopped, &ocf.Error{Code: ocf.NotRunning, Reason: fmt.Sprintf("%v; container process %d is gone", why, proc.PID), Err: ocf.ErrNotRunning}
	case r.Action == ocf.ActionStop:
		// Stop found no process to end: nothing of this resource runs
		// that the agent could ever act on.
		return ocf.Stopped, nil
	}
	return ocf.Stopped, ocf.Errorf(ocf.GenericFailure, "%v; cannot tell whether container %s runs", why, identityOf(r).Name)
}

func shortID(id string) string { return id[:min(len(id), 12)] }
