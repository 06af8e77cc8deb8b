package lua_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func jwtSign(alg, input string, key []byte) (string, error) {
	sig, err := jwt.GetSigningMethod(alg).Sign(input, key)
	return base64.RawURLEncoding.EncodeToString(sig), err
}

// esDER signs with ES256 but encodes the signature as ASN.1 DER, the form
// OpenSSL takes and JWS forbids.
func esDER(t testing.TB, k *keys, payload string) string {
	input := b64(`{"alg":"ES256","kid":"ec256"}`) + "." + b64(payload)
	h := sha256.Sum256([]byte(input))
	der, err := ecdsa.SignASN1(rand.Reader, k.ec256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(der)
}

// nonCanonical changes the unused low bits of a segment's last character,
// which decodes to the same bytes under a lenient decoder.
func nonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := seg[len(seg)-1]
	i := 0
	for i < len(alphabet) && alphabet[i] != last {
		i++
	}
	unused := map[int]int{2: 4, 3: 2}[len(seg)%4] // bits of the last character that carry no data
	if unused == 0 {
		return seg + "A" // no spare bits: make the length invalid instead
	}
	return seg[:len(seg)-1] + string(alphabet[i|1])
}
