// Package policy is the gateway's JWT policy: per issuer, the audiences,
// algorithms, leeway, groups claim and keys a token must match. It comes
// only from the resource's configuration (a JSON file), never from a
// token. Load reads the key files (PEM or JWK public keys, HMAC secrets
// from 0600 files) and returns the form the Lua verifier compiles, with
// every public key re-encoded as a PKIX PEM block so that Lua meets one
// format only.
package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
)

// File is the policy file as written by the administrator.
type File struct {
	MaxTokenBytes int      `json:"max_token_bytes,omitempty"`
	Issuers       []Issuer `json:"issuers"`
}

// Issuer is one trusted token issuer.
type Issuer struct {
	Issuer      string   `json:"issuer"`
	Audiences   []string `json:"audiences"`
	Algorithms  []string `json:"algorithms"`
	Leeway      string   `json:"leeway,omitempty"`
	GroupsClaim string   `json:"groups_claim,omitempty"`
	Keys        []Key    `json:"keys"`
}

// Key names one key file: exactly one of File (PEM public key or
// certificate), JWKFile (a public JWK) or SecretFile (an HMAC secret, mode
// 0600).
type Key struct {
	KID        string `json:"kid,omitempty"`
	File       string `json:"file,omitempty"`
	JWKFile    string `json:"jwk_file,omitempty"`
	SecretFile string `json:"secret_file,omitempty"`
}

// Compiled is the policy with its key material, as the Lua side reads it.
type Compiled struct {
	MaxTokenBytes int              `json:"max_token_bytes"`
	Issuers       []CompiledIssuer `json:"issuers"`
}

// CompiledIssuer is an Issuer with its keys loaded and leeway in seconds.
type CompiledIssuer struct {
	Issuer      string        `json:"issuer"`
	Audiences   []string      `json:"audiences"`
	Algorithms  []string      `json:"algorithms"`
	Leeway      int           `json:"leeway"`
	GroupsClaim string        `json:"groups_claim"`
	Keys        []CompiledKey `json:"keys"`
}

// CompiledKey is one key: Kind is RSA, EC-P256, EC-P384 or HMAC; PEM
// holds a PKIX public key, Secret an HMAC secret.
type CompiledKey struct {
	KID    string `json:"kid,omitempty"`
	Kind   string `json:"kind"`
	PEM    string `json:"pem,omitempty"`
	Secret []byte `json:"secret,omitempty"`
}

// Key kinds, and the kind each algorithm needs.
const (
	KindRSA  = "RSA"
	KindP256 = "EC-P256"
	KindP384 = "EC-P384"
	KindHMAC = "HMAC"
)

// Algorithms maps every supported algorithm to its key kind. EdDSA is
// absent: Debian's luaossl verifies through EVP_VerifyFinal only, which
// cannot do Ed25519.
var Algorithms = map[string]string{
	"RS256": KindRSA, "RS384": KindRSA, "RS512": KindRSA,
	"ES256": KindP256, "ES384": KindP384,
	"HS256": KindHMAC,
}

// Limits.
const (
	DefaultMaxTokenBytes = 8192
	DefaultLeeway        = 30 * time.Second
	MaxLeeway            = 5 * time.Minute
	minRSABits           = 2048
	minSecretBytes       = 32
)

// Parse decodes and checks a policy file's text (not its key files).
//
// Return values: the file, or an error naming the first problem.
func Parse(data []byte) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a policy: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a policy: data after the JSON object")
	}
	if f.MaxTokenBytes == 0 {
		f.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if f.MaxTokenBytes < 512 || f.MaxTokenBytes > 65536 {
		return nil, fmt.Errorf("max_token_bytes %d is outside 512..65536", f.MaxTokenBytes)
	}
	if len(f.Issuers) == 0 {
		return nil, errors.New("no issuers")
	}
	seen := map[string]bool{}
	for i := range f.Issuers {
		is := &f.Issuers[i]
		if err := is.check(); err != nil {
			return nil, fmt.Errorf("issuer %q: %w", is.Issuer, err)
		}
		if seen[is.Issuer] {
			return nil, fmt.Errorf("issuer %q appears twice", is.Issuer)
		}
		seen[is.Issuer] = true
	}
	return &f, nil
}

func (is *Issuer) check() error {
	if is.Issuer == "" {
		return errors.New("issuer is empty")
	}
	if len(is.Audiences) == 0 || slices.Contains(is.Audiences, "") {
		return errors.New("audiences must list at least one non-empty audience")
	}
	if len(is.Algorithms) == 0 {
		return errors.New("algorithms is empty")
	}
	for _, a := range is.Algorithms {
		if a == "EdDSA" {
			return errors.New("EdDSA is not supported (this node's luaossl cannot verify Ed25519)")
		}
		if _, ok := Algorithms[a]; !ok {
			return fmt.Errorf("algorithm %q is not one of RS256 RS384 RS512 ES256 ES384 HS256", a)
		}
	}
	if is.Leeway == "" {
		is.Leeway = DefaultLeeway.String()
	}
	if d, err := time.ParseDuration(is.Leeway); err != nil || d < 0 || d > MaxLeeway {
		return fmt.Errorf("leeway %q must be a duration from 0s to %s", is.Leeway, MaxLeeway)
	}
	if is.GroupsClaim == "" {
		is.GroupsClaim = "groups"
	}
	if len(is.Keys) == 0 {
		return errors.New("no keys")
	}
	kids := map[string]bool{}
	for _, k := range is.Keys {
		n := 0
		for _, f := range []string{k.File, k.JWKFile, k.SecretFile} {
			if f != "" {
				n++
				if !filepath.IsAbs(f) {
					return fmt.Errorf("key file %q must be an absolute path", f)
				}
			}
		}
		if n != 1 {
			return fmt.Errorf("key %q must name exactly one of file, jwk_file, secret_file", k.KID)
		}
		if k.KID != "" && kids[k.KID] {
			return fmt.Errorf("kid %q appears twice", k.KID)
		}
		kids[k.KID] = true
	}
	return nil
}

// Load reads every key file of f and checks that each allowed algorithm
// has a key and each key an allowed algorithm.
//
// Return values: the compiled policy, or an error naming the issuer and
// the file at fault (a missing file, a key that is not a public key of a
// supported kind, an RSA key under 2048 bits, a secret file with a mode
// wider than 0600 or shorter than 32 bytes).
func Load(f *File) (*Compiled, error) {
	c := &Compiled{MaxTokenBytes: f.MaxTokenBytes}
	for _, is := range f.Issuers {
		leeway, _ := time.ParseDuration(is.Leeway)
		ci := CompiledIssuer{Issuer: is.Issuer, Audiences: is.Audiences, Algorithms: is.Algorithms,
			Leeway: int(leeway / time.Second), GroupsClaim: is.GroupsClaim}
		kinds := map[string]bool{}
		for _, k := range is.Keys {
			ck, err := loadKey(k)
			if err != nil {
				return nil, fmt.Errorf("issuer %q: %w", is.Issuer, err)
			}
			kinds[ck.Kind] = true
			ci.Keys = append(ci.Keys, ck)
		}
		used := map[string]bool{}
		for _, a := range is.Algorithms {
			if !kinds[Algorithms[a]] {
				return nil, fmt.Errorf("issuer %q: algorithm %s has no %s key", is.Issuer, a, Algorithms[a])
			}
			used[Algorithms[a]] = true
		}
		for k := range kinds {
			if !used[k] {
				return nil, fmt.Errorf("issuer %q: a %s key is given but no algorithm uses it", is.Issuer, k)
			}
		}
		c.Issuers = append(c.Issuers, ci)
	}
	return c, nil
}

func loadKey(k Key) (CompiledKey, error) {
	ck := CompiledKey{KID: k.KID}
	switch {
	case k.SecretFile != "":
		s, err := ocf.ReadSecretFile(k.SecretFile, "secret_file")
		if err != nil {
			return ck, err
		}
		if len(s) < minSecretBytes {
			return ck, fmt.Errorf("secret_file %s holds fewer than %d bytes", k.SecretFile, minSecretBytes)
		}
		ck.Kind, ck.Secret = KindHMAC, []byte(s)
		return ck, nil
	case k.File != "":
		data, err := os.ReadFile(k.File)
		if err != nil {
			return ck, err
		}
		pub, err := ParsePEM(data)
		if err != nil {
			return ck, fmt.Errorf("key file %s: %w", k.File, err)
		}
		return ck, ck.setPublic(pub, k.File)
	default:
		data, err := os.ReadFile(k.JWKFile)
		if err != nil {
			return ck, err
		}
		pub, err := ParseJWK(data)
		if err != nil {
			return ck, fmt.Errorf("jwk_file %s: %w", k.JWKFile, err)
		}
		return ck, ck.setPublic(pub, k.JWKFile)
	}
}

func (ck *CompiledKey) setPublic(pub any, file string) error {
	kind, err := KindOf(pub)
	if err != nil {
		return fmt.Errorf("key file %s: %w", file, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("key file %s: %w", file, err)
	}
	ck.Kind = kind
	ck.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return nil
}

// KindOf is the kind of a public key.
//
// Return values: the kind, or an error for keys the gateway cannot use
// (RSA under 2048 bits, curves other than P-256 and P-384, Ed25519).
func KindOf(pub any) (string, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits; at least %d are required", p.N.BitLen(), minRSABits)
		}
		return KindRSA, nil
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return KindP256, nil
		case elliptic.P384():
			return KindP384, nil
		}
		return "", fmt.Errorf("EC curve %s is not supported (P-256, P-384)", p.Curve.Params().Name)
	case ed25519.PublicKey:
		return "", errors.New("Ed25519 keys are not supported by this node's luaossl")
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}

// ParsePEM reads the first PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE
// block. Private keys are refused: the gateway only ever needs the
// public half, and a private key file has no place on an edge node.
//
// Return values: the public key, or an error.
func ParsePEM(data []byte) (any, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	switch b.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a public key or certificate", b.Type)
}

// ParseJWK reads a public JWK (kty RSA or EC); private members are
// refused.
//
// Return values: the public key, or an error.
func ParseJWK(data []byte) (any, error) {
	var j struct {
		Kty, N, E, Crv, X, Y, D string
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("not a JWK: %w", err)
	}
	if j.D != "" {
		return nil, errors.New("the JWK holds a private key; give the public key only")
	}
	num := func(s string) (*big.Int, error) {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, errors.New("bad base64url number")
		}
		return new(big.Int).SetBytes(b), nil
	}
	switch j.Kty {
	case "RSA":
		n, err := num(j.N)
		if err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
		e, err := num(j.E)
		if err != nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return nil, errors.New("e: bad exponent")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return nil, fmt.Errorf("crv %q is not supported (P-256, P-384)", j.Crv)
		}
		x, err := num(j.X)
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		y, err := num(j.Y)
		if err != nil {
			return nil, fmt.Errorf("y: %w", err)
		}
		size := (curve.Params().BitSize + 7) / 8
		raw := make([]byte, 1+2*size)
		raw[0] = 4
		if len(x.Bytes()) > size || len(y.Bytes()) > size {
			return nil, errors.New("x or y is too long for the curve")
		}
		x.FillBytes(raw[1 : 1+size])
		y.FillBytes(raw[1+size:])
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("not a point on %s: %w", j.Crv, err)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("kty %q is not supported (RSA, EC)", j.Kty)
}
