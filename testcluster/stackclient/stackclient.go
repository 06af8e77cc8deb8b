// Package stackclient is a client of the whole stack, for the demo
// (testcluster/cmd/hafw-demo) and the e2e scenarios alike: requests through
// the gateway with a bearer token, a loop of them while something breaks
// and a measure of what it saw, a forged token, and ACL documents to change
// in Consul KV. What the nodes are given (CA, certificates, the issuer and
// its tokens, the web service's image) is testcluster/stackfiles. It
// returns errors instead of taking a *testing.T, so a program can use it.
package stackclient

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
)

// Tampered is token with its payload's subject replaced by sub and the
// original signature kept: a forgery every verifier must refuse.
//
// Return values:
//   - (forged, nil)
//   - ("", err): token is not a compact JWS with a JSON payload.
func Tampered(token, sub string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS: want three segments")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "", err
	}
	claims["sub"] = sub
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, "."), nil
}

// AllowSubjects is an ACL document (Consul KV acl/<service>) of revision
// version letting the given subjects make any request, and nobody else.
func AllowSubjects(version int, subjects ...string) ([]byte, error) {
	d := acl.Document{Version: version, Mode: "enforce",
		Rules: []acl.Rule{{Name: "allowed", Action: "allow", Subjects: subjects}}}
	return json.Marshal(d)
}
