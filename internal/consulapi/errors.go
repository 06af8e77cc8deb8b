package consulapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// StatusCode returns the HTTP status of the answer Consul gave when err
// reports one (an api.StatusError anywhere in the chain).
//
// Return values:
//   - (code, true): Consul answered with status code.
//   - (0, false): err is nil, or no answer came (see IsUnreachable), or
//     the failure happened elsewhere.
func StatusCode(err error) (int, bool) {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code, true
	}
	var sp *api.StatusError
	if errors.As(err, &sp) && sp != nil {
		return sp.Code, true
	}
	return 0, false
}

// IsForbidden reports whether Consul refused the request with 403: the
// token lacks a permission, or Consul does not know the token at all
// ("ACL not found").
func IsForbidden(err error) bool {
	code, ok := StatusCode(err)
	return ok && code == 403
}

// IsNotFound reports whether Consul answered 404.
func IsNotFound(err error) bool {
	code, ok := StatusCode(err)
	return ok && code == 404
}

// IsUnreachable reports whether the request got no HTTP answer because
// the agent could not be reached or spoken to: connection refused or
// reset, no route, a name that does not resolve, or a failed TLS
// handshake. An error that only says the context ended is not
// unreachable: test that with errors.Is(err, context.DeadlineExceeded).
func IsUnreachable(err error) bool {
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	if _, ok := StatusCode(err); ok {
		return false
	}
	// net/http reports every failure to get an answer as a *url.Error;
	// the api package passes it on unwrapped.
	var ue *url.Error
	return errors.As(err, &ue)
}

// Describe returns a short account of a failed call for an exit reason:
// "403 Permission denied", "connection refused", "TLS: certificate
// signed by unknown authority", "no answer before the deadline". It is
// log and reason text, not something to match.
func Describe(err error) string {
	if err == nil {
		return ""
	}
	var se api.StatusError
	if errors.As(err, &se) {
		return strconv.Itoa(se.Code) + " " + firstLine(se.Body, 100)
	}
	var ne net.Error
	var ce *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var de *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer before the deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &ua):
		return "TLS: certificate signed by an unknown authority; check ca_file"
	case errors.As(err, &hn):
		return "TLS: " + firstLine(hn.Error(), 100)
	case errors.As(err, &ce):
		return "TLS: " + firstLine(ce.Err.Error(), 100)
	case errors.As(err, &de):
		return "cannot resolve " + de.Name
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// An agent over its limit of connections per client address
		// writes its 429 at once and closes; on a connection net/http
		// keeps idle, it reports that with an internal name and a
		// formatting error instead of a message.
		if strings.HasPrefix(ue.Err.Error(), "readLoopPeekFailLocked") {
			return "connection closed without an answer (at the agent's limit of connections per client?)"
		}
		return firstLine(ue.Err.Error(), 100)
	}
	return firstLine(err.Error(), 100)
}

// firstLine returns the first non-blank line of s, made safe for a reason
// and cut to at most max bytes on a rune boundary (ocf.OneLine).
func firstLine(s string, max int) string {
	return ocf.OneLine(process.FirstLine([]byte(s)), max)
}
