-- JWT (compact JWS) verification against a policy from the gateway's own
-- configuration. Nothing in a token chooses how it is checked: the issuer
-- policy names the algorithms and keys, the header's alg must be one of
-- them, kid only picks among configured keys, and jku, x5u, jwk and x5c
-- are never read. A crit header is refused, since no extension is
-- understood (RFC 7515 4.1.11).
local b64 = require "ngx.base64"
local digest = require "openssl.digest"
local hmac = require "openssl.hmac"
local strictjson = require "gateway.strictjson"

local byte, find, sub, char = string.byte, string.find, string.sub, string.char
local floor = math.floor

local _M = {}

-- ALGS maps an algorithm to the key kind it needs and the digest;
-- size is the length of each ECDSA integer in a raw signature.
local ALGS = {
  RS256 = { kind = "RSA", md = "sha256" },
  RS384 = { kind = "RSA", md = "sha384" },
  RS512 = { kind = "RSA", md = "sha512" },
  ES256 = { kind = "EC-P256", md = "sha256", size = 32 },
  ES384 = { kind = "EC-P384", md = "sha384", size = 48 },
  HS256 = { kind = "HMAC", md = "sha256" },
}
_M.ALGS = ALGS

-- Numeric dates beyond this (year 2286) are refused: they are no real
-- expiry, and parsers disagree on what they mean.
local MAX_DATE = 1e10

-- b64url decodes one segment strictly: the URL-safe alphabet only, no
-- padding, and canonical (unused bits zero), so a token has one spelling.
local function b64url(s)
  if s == "" then return "" end
  if #s % 4 == 1 or find(s, "[^A-Za-z0-9_-]") then return nil end
  local d = b64.decode_base64url(s)
  if not d or b64.encode_base64url(d) ~= s then return nil end
  return d
end
_M.b64url = b64url

-- der_integer encodes an unsigned big-endian integer as DER.
local function der_integer(bytes)
  local i = 1
  while i < #bytes and byte(bytes, i) == 0 do i = i + 1 end
  bytes = sub(bytes, i)
  if byte(bytes, 1) >= 0x80 then bytes = "\0" .. bytes end
  return "\2" .. char(#bytes) .. bytes
end

-- ecdsa_der turns a JWS ECDSA signature (r || s, fixed width) into the
-- DER SEQUENCE OpenSSL verifies.
local function ecdsa_der(sig, size)
  if #sig ~= 2 * size then return nil end
  local body = der_integer(sub(sig, 1, size)) .. der_integer(sub(sig, size + 1))
  if #body < 128 then return "\48" .. char(#body) .. body end
  return "\48\129" .. char(#body) .. body
end

-- equal compares two strings in time that depends only on their lengths.
local function equal(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do
    diff = bit.bor(diff, bit.bxor(byte(a, i), byte(b, i)))
  end
  return diff == 0
end
_M.equal = equal

-- pick chooses the key for alg: by kid among the issuer's keys of the
-- algorithm's kind, or the only such key when the token names none.
local function pick(ip, kind, kid)
  if kid ~= nil then
    if type(kid) ~= "string" then return nil, "kid is not a string" end
    for _, k in ipairs(ip.keys) do
      if k.kind == kind and k.kid == kid then return k end
    end
    return nil, "unknown kid"
  end
  local found
  for _, k in ipairs(ip.keys) do
    if k.kind == kind then
      if found then return nil, "kid required: the issuer has several keys" end
      found = k
    end
  end
  if not found then return nil, "no key for the algorithm" end
  return found
end

local function check_signature(a, key, input, sig)
  if sig == "" then return false end
  if a.kind == "HMAC" then
    return equal(hmac.new(key.secret, a.md):final(input), sig)
  end
  if a.size then
    sig = ecdsa_der(sig, a.size)
    if not sig then return false end
  end
  local d = digest.new(a.md)
  d:update(input)
  local ok, res = pcall(key.pkey.verify, key.pkey, sig, d)
  return ok and res == true
end

local function numeric_date(v)
  if type(v) ~= "number" or v ~= v or v < 0 or v >= MAX_DATE then return nil end
  return floor(v)
end

-- audience_ok applies the issuer's audiences to the aud claim: a string
-- or an array of strings naming at least one of them.
local function audience_ok(aud, want)
  local list
  if type(aud) == "string" then
    list = { aud }
  elseif type(aud) == "table" then
    local n = 0
    for _ in pairs(aud) do n = n + 1 end
    if n ~= #aud then return false end
    for _, a in ipairs(aud) do
      if type(a) ~= "string" then return false end
    end
    list = aud
  else
    return false
  end
  if #list == 0 or (#list == 1 and list[1] == "") then return false end
  for _, a in ipairs(list) do
    if want[a] then return true end
  end
  return false
end

-- verify checks a compact token at time now (seconds) against policy. It
-- returns the claims, or nil and a short reason (safe to log, never to
-- the client in detail).
function _M.verify(policy, token, now)
  if type(token) ~= "string" or token == "" then return nil, "no token" end
  if #token > policy.max_token_bytes then return nil, "token too large" end
  local h64, p64, s64 = token:match("^([^.]*)%.([^.]*)%.([^.]*)$")
  if not h64 then return nil, "not a three-part compact JWS" end
  local hjson, pjson, sig = b64url(h64), b64url(p64), b64url(s64)
  if not hjson or not pjson or not sig then return nil, "segment is not canonical base64url" end
  local header, err = strictjson.decode_object(hjson)
  if not header then return nil, "header: " .. err end
  local claims
  claims, err = strictjson.decode_object(pjson)
  if not claims then return nil, "claims: " .. err end
  if header.crit ~= nil then return nil, "crit header" end
  local alg = header.alg
  if type(alg) ~= "string" then return nil, "alg missing" end
  local iss = claims.iss
  if type(iss) ~= "string" then return nil, "iss missing" end
  local ip = policy.issuers[iss]
  if not ip then return nil, "unknown issuer" end
  if not ip.algs[alg] then return nil, "algorithm not allowed" end
  local a = ALGS[alg]
  local key
  key, err = pick(ip, a.kind, header.kid)
  if not key then return nil, err end
  if not check_signature(a, key, h64 .. "." .. p64, sig) then return nil, "bad signature" end

  local exp = numeric_date(claims.exp)
  if not exp then return nil, "exp missing or invalid" end
  if not (now < exp + ip.leeway) then return nil, "expired" end
  if claims.nbf ~= nil and claims.nbf ~= ngx.null then
    local nbf = numeric_date(claims.nbf)
    if not nbf then return nil, "nbf invalid" end
    if now + ip.leeway < nbf then return nil, "not yet valid" end
  end
  if not audience_ok(claims.aud, ip.audiences) then return nil, "wrong audience" end
  local subj = claims.sub
  if type(subj) ~= "string" or subj == "" or #subj > 256 or find(subj, "[%c]") then
    return nil, "sub missing or invalid"
  end
  return claims, nil, ip, exp
end

return _M
