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
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	// KVKeys names the issuer's folder in Consul KV: its public keys are
	// also read from KEYS_PREFIX + KVKeys + "/keys/" + kid.
	KVKeys string `json:"kv_keys,omitempty"`
	Keys   []Key  `json:"keys"`
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
	KVKeys      string        `json:"kv_keys,omitempty"`
	Keys        []CompiledKey `json:"keys"`
}

// CompiledKey is one key: Kind is RSA, EC-P256, EC-P384 or HMAC; PEM
// holds a PKIX public key, Secret an HMAC secret. Version identifies a
// public key (a digest of Kind and PEM): nginx parses each version once
// and reuses the parsed key while the version stays.
type CompiledKey struct {
	KID     string `json:"kid,omitempty"`
	Kind    string `json:"kind"`
	PEM     string `json:"pem,omitempty"`
	Secret  []byte `json:"secret,omitempty"`
	Version string `json:"version,omitempty"`
}

// Key kinds, and the kind each algorithm needs.
const (
	KindRSA  = "RSA"
	KindP256 = "EC-P256"
	KindP384 = "EC-P384"
	KindHMAC = "HMAC"
)

// Algorithms maps every supported algorithm to its key kind. EdDSA is
// absent: Debian 12's luaossl (20220711) signs and verifies only through
// a digest context (EVP_SignFinal, EVP_VerifyFinal), which OpenSSL 3
// refuses for Ed25519 ("operation not supported for this keytype"); it has
// no one-shot EVP_DigestVerify.
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
	// maxRSABits bounds the cost of one verification a key can impose.
	maxRSABits     = 8192
	minSecretBytes = 32
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
	seen, folders := map[string]bool{}, map[string]bool{}
	for i := range f.Issuers {
		is := &f.Issuers[i]
		if err := is.check(); err != nil {
			return nil, fmt.Errorf("issuer %q: %w", is.Issuer, err)
		}
		if seen[is.Issuer] {
			return nil, fmt.Errorf("issuer %q appears twice", is.Issuer)
		}
		seen[is.Issuer] = true
		if is.KVKeys != "" && folders[is.KVKeys] {
			return nil, fmt.Errorf("kv_keys %q is given to two issuers", is.KVKeys)
		}
		folders[is.KVKeys] = true
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
			return errors.New("EdDSA is not supported: Debian's luaossl cannot verify Ed25519; use RS256 or ES256")
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
	if is.KVKeys != "" && !validKVName(is.KVKeys) {
		return fmt.Errorf("kv_keys %q must be 1 to 63 letters, digits and . _ - (a Consul KV folder name)", is.KVKeys)
	}
	if len(is.Keys) == 0 && is.KVKeys == "" {
		return errors.New("no keys (give keys, or kv_keys for keys in Consul KV)")
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
			Leeway: int(leeway / time.Second), GroupsClaim: is.GroupsClaim, KVKeys: is.KVKeys}
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
			// Public keys may come from Consul KV instead (none there:
			// such tokens are refused); HMAC secrets only from files.
			fromKV := is.KVKeys != "" && Algorithms[a] != KindHMAC
			if !kinds[Algorithms[a]] && !fromKV {
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
	kind, pemText, version, err := publicKey(pub)
	if err != nil {
		return fmt.Errorf("key file %s: %w", file, err)
	}
	ck.Kind, ck.PEM, ck.Version = kind, pemText, version
	return nil
}

// publicKey checks a public key and encodes it as a PKIX PEM block, the
// one form the Lua side reads.
func publicKey(pub any) (kind, pemText, version string, err error) {
	if kind, err = KindOf(pub); err != nil {
		return "", "", "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", "", err
	}
	pemText = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return kind, pemText, keyVersion(kind, pemText), nil
}

// keyVersion identifies a public key by its kind and PKIX encoding.
func keyVersion(kind, pemText string) string {
	h := sha256.Sum256([]byte(kind + "\n" + pemText))
	return hex.EncodeToString(h[:12])
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
		if p.N.BitLen() > maxRSABits {
			return "", fmt.Errorf("RSA key of %d bits; at most %d are accepted", p.N.BitLen(), maxRSABits)
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
	return parsePEMBlock(b)
}

func parsePEMBlock(b *pem.Block) (any, error) {
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
	if strings.Contains(b.Type, "PRIVATE") {
		return nil, fmt.Errorf("PEM block %q is not a public key or certificate: it holds a private key", b.Type)
	}
	return nil, fmt.Errorf("PEM block %q is not a public key or certificate", b.Type)
}

// ParseJWK reads a public JWK (kty RSA or EC) strictly: private and
// symmetric members, unknown members, non-canonical base64url and short
// EC coordinates are refused.
//
// Return values: the public key, or an error.
func ParseJWK(data []byte) (any, error) {
	pub, _, err := parseJWK(data)
	return pub, err
}
