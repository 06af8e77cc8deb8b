package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/strictjson"
	"github.com/ha-framework/ha-framework/internal/charclass"
)

// Keys in Consul KV. An issuer with kv_keys "idp" takes, besides the keys
// of its policy entry, every document at KEYS_PREFIX + "idp/keys/" + kid:
// a PEM public key (or certificate), or a public JWK. Anyone with write
// access to that folder can add keys, so each document is validated as
// hostile input: size, kid syntax, key type against the issuer's
// algorithms, RSA size, EC curve, no private or symmetric members.

// Limits of keys in Consul KV.
const (
	// MaxKeyDocumentBytes bounds one key document (a PEM certificate
	// with an RSA-8192 key is about 3 KiB).
	MaxKeyDocumentBytes = 16 << 10
	// MaxKVKeysPerIssuer bounds the keys one issuer takes from KV.
	MaxKVKeysPerIssuer = 32
	// MaxKeyDocuments bounds the documents of one issuer's folder that
	// are read at all: a flood of them costs neither parsing nor status.
	MaxKeyDocuments = 4 * MaxKVKeysPerIssuer
)

// The classes of KV folder names and kids, matched without regular
// expressions (see package charclass): the policy is checked on every
// monitor.
var (
	alnum      = charclass.Of("A-Za-z0-9")
	kvNameRest = charclass.Of("A-Za-z0-9._-")
	// A kid in KV is a key name: no slash, no leading dot, so that it
	// can never address anything but itself.
	kidFirst = charclass.Of("A-Za-z0-9_~=+-")
	kidRest  = charclass.Of("A-Za-z0-9._~=+-")
)

// validKVName reports whether s is a Consul KV folder name of at most 63
// bytes.
func validKVName(s string) bool { return charclass.Word(s, alnum, kvNameRest, 63) }

// validKID reports whether s is a key name of at most 128 bytes.
func validKID(s string) bool { return charclass.Word(s, kidFirst, kidRest, 128) }

// StoredKey is a key taken from Consul KV, with the issuer it belongs to.
type StoredKey struct {
	Issuer string      `json:"issuer"`
	Key    CompiledKey `json:"key"`
}

// KVPair is one Consul KV entry, as far as keys are concerned.
type KVPair struct {
	Key   string
	Value []byte
}

// KeyPath is where the key kid of the issuer with kv_keys folder lives.
//
// Return values: the KV key (with kid "", the folder of the keys).
func KeyPath(prefix, folder, kid string) string { return prefix + folder + "/keys/" + kid }

// ParseKeyDocument validates one key document of Consul KV, stored under
// kid, for the issuer is.
//
// Return values: the compiled key (KID set to kid); or an error naming the
// first problem: too large, a kid that is not a plain name, neither PEM
// nor JWK, a private or symmetric key, an unsupported type, RSA outside
// 2048..8192 bits, a curve or JWK alg the issuer's algorithms do not use,
// a JWK kid differing from kid.
func ParseKeyDocument(data []byte, kid string, is *CompiledIssuer) (CompiledKey, error) {
	ck := CompiledKey{KID: kid}
	if len(data) > MaxKeyDocumentBytes {
		return ck, fmt.Errorf("document of %d bytes exceeds %d", len(data), MaxKeyDocumentBytes)
	}
	if !validKID(kid) {
		return ck, errors.New("kid must be 1 to 128 letters, digits and . _ ~ = + - (no leading dot)")
	}
	text := bytes.TrimSpace(data)
	var pub any
	alg := ""
	switch {
	case bytes.HasPrefix(text, []byte("{")):
		p, meta, err := parseJWK(text)
		if err != nil {
			return ck, err
		}
		if meta.hasKID && meta.kid != kid {
			return ck, fmt.Errorf("the JWK's kid %q differs from its KV key's %q", meta.kid, kid)
		}
		pub, alg = p, meta.alg
	case bytes.HasPrefix(text, []byte("-----BEGIN ")):
		b, rest := pem.Decode(text)
		if b == nil {
			return ck, errors.New("a broken PEM block")
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return ck, errors.New("data after the PEM block; give one key per KV key")
		}
		if len(b.Headers) != 0 {
			return ck, errors.New("PEM headers are not accepted")
		}
		p, err := parsePEMBlock(b)
		if err != nil {
			return ck, err
		}
		pub = p
	default:
		return ck, errors.New("neither a PEM block nor a JWK")
	}
	kind, pemText, version, err := publicKey(pub)
	if err != nil {
		return ck, err
	}
	if err := is.uses(kind); err != nil {
		return ck, err
	}
	if alg != "" {
		if !slices.Contains(is.Algorithms, alg) || Algorithms[alg] != kind {
			return ck, fmt.Errorf("the JWK's alg %q is not one of the issuer's %s algorithms", alg, kind)
		}
	}
	ck.Kind, ck.PEM, ck.Version = kind, pemText, version
	return ck, nil
}

// uses refuses a key kind none of the issuer's algorithms verifies with.
func (is *CompiledIssuer) uses(kind string) error {
	for _, a := range is.Algorithms {
		if Algorithms[a] == kind {
			return nil
		}
	}
	return fmt.Errorf("a %s key, but the issuer's algorithms (%s) use none", kind, strings.Join(is.Algorithms, " "))
}

// SelectKVKeys takes the key documents of a KV listing under prefix into
// the keys in force for the issuers of c that have kv_keys. Entries
// outside an issuer's keys folder are ignored. A refused document keeps,
// at its path, the key of prev (the keys in force so far) when that one
// still fits the issuer; a path absent from pairs loses its key.
//
// Return values: the keys in force by KV path, and the refused documents
// by KV path with the reason (both non-nil).
func SelectKVKeys(c *Compiled, prefix string, pairs []KVPair, prev map[string]StoredKey) (map[string]StoredKey, map[string]string) {
	keys, refused := map[string]StoredKey{}, map[string]string{}
	if c == nil {
		return keys, refused
	}
	byFolder := map[string]*CompiledIssuer{}
	for i := range c.Issuers {
		if is := &c.Issuers[i]; is.KVKeys != "" {
			byFolder[is.KVKeys] = is
		}
	}
	count, seen := map[string]int{}, map[string]int{}
	sorted := slices.SortedFunc(slices.Values(pairs), func(a, b KVPair) int { return strings.Compare(a.Key, b.Key) })
	for _, p := range sorted {
		rest, ok := strings.CutPrefix(p.Key, prefix)
		if !ok {
			continue
		}
		folder, tail, _ := strings.Cut(rest, "/")
		is := byFolder[folder]
		kid, ok := strings.CutPrefix(tail, "keys/")
		if is == nil || !ok || (kid == "" && len(p.Value) == 0) || (strings.HasSuffix(kid, "/") && len(p.Value) == 0) {
			continue // not a key of ours, or a folder entry
		}
		// keepPrev keeps the last good key at a refused document.
		keepPrev := func() {
			if old, ok := prev[p.Key]; ok && old.Issuer == is.Issuer && fits(is, old.Key) == nil && count[is.Issuer] < MaxKVKeysPerIssuer {
				keys[p.Key] = old
				count[is.Issuer]++
			}
		}
		if seen[is.Issuer]++; seen[is.Issuer] > MaxKeyDocuments {
			if folderPath := KeyPath(prefix, folder, ""); refused[folderPath] == "" {
				refused[folderPath] = fmt.Sprintf("more than %d documents; %s and those after it are ignored", MaxKeyDocuments, p.Key)
			}
			keepPrev()
			continue
		}
		ck, err := ParseKeyDocument(p.Value, kid, is)
		if err == nil {
			err = fits(is, ck)
		}
		if err == nil && count[is.Issuer] >= MaxKVKeysPerIssuer {
			err = fmt.Errorf("issuer %q already has %d keys from KV", is.Issuer, MaxKVKeysPerIssuer)
		}
		if err != nil {
			refused[p.Key] = err.Error()
			keepPrev()
			continue
		}
		keys[p.Key] = StoredKey{Issuer: is.Issuer, Key: ck}
		count[is.Issuer]++
	}
	return keys, refused
}

// FitKVKeys keeps the keys of kv that still belong to an issuer of c with
// the same kv_keys folder and fit its algorithms: the keys restored from
// the persisted state, or in force, when the policy changes before Consul
// answers.
//
// Return values: the keys kept (non-nil).
func FitKVKeys(c *Compiled, prefix string, kv map[string]StoredKey) map[string]StoredKey {
	out := map[string]StoredKey{}
	if c == nil {
		return out
	}
	for path, k := range kv {
		for i := range c.Issuers {
			is := &c.Issuers[i]
			if is.Issuer == k.Issuer && is.KVKeys != "" && path == KeyPath(prefix, is.KVKeys, k.Key.KID) && fits(is, k.Key) == nil {
				out[path] = k
			}
		}
	}
	return out
}

// fits checks a KV key against the issuer's policy entry: an algorithm
// uses its kind, and no key of the policy file has its kid.
func fits(is *CompiledIssuer, k CompiledKey) error {
	if k.Kind == KindHMAC || k.PEM == "" {
		return errors.New("only public keys come from KV")
	}
	if err := is.uses(k.Kind); err != nil {
		return err
	}
	for _, f := range is.Keys {
		if f.KID == k.KID {
			return fmt.Errorf("kid %q is also a key of jwt_policy_file", k.KID)
		}
	}
	return nil
}

// WithKVKeys is c with the keys of kv added to their issuers, in the
// order of their KV paths. c itself is not changed.
//
// Return values: the merged policy (nil when c is nil).
func (c *Compiled) WithKVKeys(kv map[string]StoredKey) *Compiled {
	if c == nil {
		return nil
	}
	out := *c
	out.Issuers = slices.Clone(c.Issuers)
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range kv {
			if !yield(p) {
				return
			}
		}
	})
	for i := range out.Issuers {
		is := &out.Issuers[i]
		is.Keys = slices.Clone(is.Keys)
		for _, p := range paths {
			if kv[p].Issuer == is.Issuer {
				is.Keys = append(is.Keys, kv[p].Key)
			}
		}
	}
	return &out
}

// jwkMeta is what a JWK says about its own use.
type jwkMeta struct {
	kid, alg string
	hasKID   bool
}

// JWK members: those read, those accepted but never read (certificate
// references and thumbprints), and those of private or symmetric keys.
var (
	jwkPublic  = map[string]bool{"kty": true, "n": true, "e": true, "crv": true, "x": true, "y": true, "kid": true, "alg": true, "use": true, "key_ops": true}
	jwkIgnored = map[string]bool{"x5c": true, "x5t": true, "x5t#S256": true, "x5u": true}
	jwkPrivate = map[string]bool{"d": true, "p": true, "q": true, "dp": true, "dq": true, "qi": true, "oth": true, "k": true}
)

// parseJWK reads a public JWK strictly: strict JSON, member names exactly
// as RFC 7517/7518 spell them, no private or symmetric members, no
// unknown members, canonical base64url, full-length EC coordinates.
func parseJWK(data []byte) (any, jwkMeta, error) {
	var meta jwkMeta
	if err := strictjson.CheckObject(data); err != nil {
		return nil, meta, errors.New("not a JWK: not a strict JSON object (syntax, duplicate member, or invalid UTF-8)")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, meta, fmt.Errorf("not a JWK: %w", err)
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range m {
			if !yield(n) {
				return
			}
		}
	}) {
		switch {
		case name == "k":
			return nil, meta, errors.New("the JWK holds a symmetric key (member \"k\"); only public keys are accepted")
		case jwkPrivate[name]:
			return nil, meta, fmt.Errorf("the JWK holds a private key (member %q); give the public key only", name)
		case !jwkPublic[name] && !jwkIgnored[name]:
			return nil, meta, fmt.Errorf("the JWK has an unknown member %q", name)
		}
	}
	str := func(name string) (string, bool, error) {
		raw, ok := m[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", true, fmt.Errorf("JWK member %q is not a string", name)
		}
		return s, true, nil
	}
	var err error
	if meta.kid, meta.hasKID, err = str("kid"); err != nil {
		return nil, meta, err
	}
	if meta.alg, _, err = str("alg"); err != nil {
		return nil, meta, err
	}
	if use, has, err := str("use"); err != nil {
		return nil, meta, err
	} else if has && use != "sig" {
		return nil, meta, fmt.Errorf("the JWK's use %q is not sig", use)
	}
	if raw, ok := m["key_ops"]; ok {
		var ops []string
		if err := json.Unmarshal(raw, &ops); err != nil || !slices.Equal(ops, []string{"verify"}) {
			return nil, meta, errors.New(`the JWK's key_ops must be ["verify"]`)
		}
	}
	kty, _, err := str("kty")
	if err != nil {
		return nil, meta, err
	}
	only := func(allowed ...string) error {
		for name := range m {
			if jwkPublic[name] && !slices.Contains(allowed, name) && !slices.Contains([]string{"kty", "kid", "alg", "use", "key_ops"}, name) {
				return fmt.Errorf("member %q does not belong to a %s JWK", name, kty)
			}
		}
		return nil
	}
	num := func(name string) ([]byte, error) {
		s, has, err := str(name)
		if err != nil {
			return nil, err
		}
		b, derr := base64.RawURLEncoding.Strict().DecodeString(s)
		if !has || derr != nil || len(b) == 0 {
			return nil, fmt.Errorf("JWK member %q is missing or not canonical base64url", name)
		}
		return b, nil
	}
	switch kty {
	case "RSA":
		if err := only("n", "e"); err != nil {
			return nil, meta, err
		}
		n, err := num("n")
		if err != nil {
			return nil, meta, err
		}
		e, err := num("e")
		if err != nil {
			return nil, meta, err
		}
		if n[0] == 0 || e[0] == 0 {
			return nil, meta, errors.New("JWK n or e has a leading zero byte")
		}
		ev := new(big.Int).SetBytes(e)
		if !ev.IsInt64() || ev.Int64() < 3 || ev.Int64() > 1<<31-1 || ev.Bit(0) == 0 {
			return nil, meta, errors.New("JWK e must be an odd exponent from 3 to 2^31-1")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev.Int64())}, meta, nil
	case "EC":
		if err := only("crv", "x", "y"); err != nil {
			return nil, meta, err
		}
		crv, _, err := str("crv")
		if err != nil {
			return nil, meta, err
		}
		var curve elliptic.Curve
		switch crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return nil, meta, fmt.Errorf("crv %q is not supported (P-256, P-384)", crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := num("x")
		if err != nil {
			return nil, meta, err
		}
		y, err := num("y")
		if err != nil {
			return nil, meta, err
		}
		if len(x) != size || len(y) != size {
			return nil, meta, fmt.Errorf("JWK x and y must be %d bytes each for %s", size, crv)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, meta, fmt.Errorf("not a point on %s: %w", crv, err)
		}
		return pub, meta, nil
	case "OKP":
		return nil, meta, errors.New("kty OKP (Ed25519) is not supported: Debian's luaossl cannot verify EdDSA")
	case "oct":
		return nil, meta, errors.New("kty oct: symmetric keys are not accepted here")
	}
	return nil, meta, fmt.Errorf("kty %q is not supported (RSA, EC)", kty)
}
