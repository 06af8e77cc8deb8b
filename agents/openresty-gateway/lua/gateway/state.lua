-- The gateway's state: policy, keys and ACLs, pushed by the companion as
-- one JSON document into the shared dictionary, and compiled once per
-- version in each worker (keys are parsed here, never per request).
local cjson = require "cjson.safe"
local pkey = require "openssl.pkey"
local acl = require "gateway.acl"
local jwt = require "gateway.jwt"

local _M = {}

local DICT = "gw_state"

_M.options = { identity_prefix = "x-auth-", subject_header = "X-Auth-Subject", issuer_header = "X-Auth-Issuer", realm = "gateway",
  claim_headers = {} }

local compiled = nil

-- parses counts the public keys this worker parsed, for the tests.
_M.parses = 0

-- pkey:type() names, as OpenSSL's short names of the key algorithms.
local KINDS = { RSA = "rsaEncryption", ["EC-P256"] = "id-ecPublicKey", ["EC-P384"] = "id-ecPublicKey" }

-- compile_key parses one key; parsed holds the public keys of the state
-- in force by kind and PEM text, reused as they are: a key is parsed once
-- per version, however often other keys or ACLs change.
local function compile_key(k, parsed)
  if type(k) ~= "table" or type(k.kind) ~= "string" then error("key: no kind") end
  if k.kid ~= nil and type(k.kid) ~= "string" then error("key: bad kid") end
  if k.version ~= nil and type(k.version) ~= "string" then error("key: bad version") end
  local out = { kid = k.kid, kind = k.kind, version = k.version }
  if k.kind == "HMAC" then
    local secret = type(k.secret) == "string" and ngx.decode_base64(k.secret)
    if not secret or #secret < 32 then error("key " .. tostring(k.kid) .. ": HMAC secret shorter than 32 bytes") end
    out.secret = secret
  elseif KINDS[k.kind] then
    if type(k.pem) ~= "string" then error("key: no pem") end
    local p = parsed[k.kind .. "\n" .. k.pem]
    if p then
      out.pkey, out.pem = p, k.pem
      return out
    end
    p = pkey.new(k.pem, "PEM")
    _M.parses = _M.parses + 1
    if p:type() ~= KINDS[k.kind] then error("key " .. tostring(k.kid) .. ": not " .. k.kind) end
    out.pkey = p
    out.pem = k.pem
  else
    error("key: unknown kind " .. k.kind)
  end
  return out
end

-- compile parses a state document; it raises an error on any shape it
-- does not know. The public keys of prev are reused where kind and PEM
-- text are the same: an ACL change, or a key added, parses no other key.
local function compile(text, prev)
  local doc = cjson.decode(text)
  if type(doc) ~= "table" or type(doc.version) ~= "string" or type(doc.policy) ~= "table" then
    error("state: no version or policy")
  end
  local acls = {}
  if type(doc.acls) == "table" then
    for svc, d in pairs(doc.acls) do
      acls[svc] = acl.compile(d)
    end
  end
  local parsed = {}
  if prev then
    for _, ip in pairs(prev.policy.issuers) do
      for _, k in ipairs(ip.keys) do
        if k.pkey then parsed[k.kind .. "\n" .. k.pem] = k.pkey end
      end
    end
  end
  local p = doc.policy
  local policy = { max_token_bytes = tonumber(p.max_token_bytes) or 8192, issuers = {} }
  for _, ip in ipairs(p.issuers or {}) do
    if type(ip.issuer) ~= "string" or ip.issuer == "" then error("issuer: no name") end
    local c = { issuer = ip.issuer, algs = {}, audiences = {}, keys = {},
      leeway = tonumber(ip.leeway) or 0, groups_claim = ip.groups_claim or "groups" }
    for _, a in ipairs(ip.algorithms or {}) do
      if not jwt.ALGS[a] then error("issuer " .. ip.issuer .. ": algorithm " .. tostring(a) .. " unsupported") end
      c.algs[a] = true
    end
    for _, a in ipairs(ip.audiences or {}) do
      if type(a) ~= "string" or a == "" then error("issuer " .. ip.issuer .. ": bad audience") end
      c.audiences[a] = true
    end
    if next(c.audiences) == nil then error("issuer " .. ip.issuer .. ": no audience") end
    for _, k in ipairs(ip.keys or {}) do
      c.keys[#c.keys + 1] = compile_key(k, parsed)
    end
    policy.issuers[ip.issuer] = c
  end
  return { version = doc.version, keys_version = doc.keys_version, policy = policy, acls = acls }
end

-- try_compile is compile that returns nil and the reason instead of raising.
function _M.try_compile(text, prev)
  local ok, res = pcall(compile, text, prev)
  if not ok then return nil, tostring(res) end
  return res
end

-- current returns this worker's compiled state, recompiled when the
-- shared version moved; nil when there is none (everything is denied).
function _M.current()
  local v = ngx.shared[DICT]:get("version")
  if not v then return nil end
  if compiled and compiled.version == v then return compiled end
  local text = ngx.shared[DICT]:get("state")
  local c, err = _M.try_compile(text or "", compiled)
  if not c then
    ngx.log(ngx.ERR, "gateway: shared state does not compile: ", err)
    return nil
  end
  compiled = c
  return c
end

-- store puts a state document that compiled into the shared dictionary;
-- c, its compiled form, becomes this worker's (the others compile it at
-- their next request).
function _M.store(text, version, c)
  local dict = ngx.shared[DICT]
  local ok, err = dict:set("state", text)
  if not ok then return nil, err end
  ok, err = dict:set("version", version)
  if not ok then return nil, err end
  if c then compiled = c end
  return true
end

-- load_file runs in the master (init_by_lua, as root): the last good
-- state persisted by the companion, so a restart enforces it even before
-- the companion pushes again.
function _M.load_file(path)
  local f = io.open(path, "rb")
  if not f then return end
  local text = f:read("*a")
  f:close()
  local doc = cjson.decode(text)
  if type(doc) == "table" and type(doc.version) == "string" then
    _M.store(text, doc.version)
  end
end

return _M
