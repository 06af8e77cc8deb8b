-- The access phase of every routed location: identity headers stripped,
-- path checked, client certificate (when the route asks for one), token
-- verified (or found in this worker's cache), ACL applied. Every path
-- that is not an explicit allow ends the request.
local lrucache = require "resty.lrucache"
local jwt = require "gateway.jwt"
local acl = require "gateway.acl"
local state = require "gateway.state"

local lower, find, sub, format = string.lower, string.find, string.sub, string.format
local concat = table.concat
local get_headers, clear_header, set_header = ngx.req.get_headers, ngx.req.clear_header, ngx.req.set_header
local get_method = ngx.req.get_method

local _M = {}

local MAX_HEADERS = 100
-- A claim passed in a header is at most this long.
local MAX_CLAIM_BYTES = 1024
local cache = assert(lrucache.new(4096))

local function unauthorized(reason, detail)
  ngx.log(ngx.INFO, "gateway: 401: ", reason)
  local realm = state.options.realm
  if detail then
    ngx.header["WWW-Authenticate"] = 'Bearer realm="' .. realm .. '", error="invalid_token"'
  else
    ngx.header["WWW-Authenticate"] = 'Bearer realm="' .. realm .. '"'
  end
  return ngx.exit(401)
end

local function list_of(v)
  if type(v) == "string" then return { v } end
  if type(v) == "table" then return v end
  return {}
end

-- scalar is the header text of a string, number or boolean claim value,
-- or nil for anything else and for text that cannot be one header line.
local function scalar(v)
  local t = type(v)
  if t == "string" then
    if v == "" or #v > MAX_CLAIM_BYTES or find(v, "%c") then return nil end
    return v
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil end
    if v == math.floor(v) and v > -2^53 and v < 2^53 then return format("%d", v) end
    return format("%.17g", v)
  elseif t == "boolean" then
    return tostring(v)
  end
  return nil
end

-- claim_text is a verified claim as one header value: a scalar, or an
-- array of scalars joined by commas (none may hold a comma itself); nil
-- when it cannot be sent faithfully.
local function claim_text(v)
  if type(v) ~= "table" then return scalar(v) end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n == 0 or n ~= #v then return nil end
  local parts = {}
  for i = 1, n do
    local s = scalar(v[i])
    if not s or find(s, ",", 1, true) then return nil end
    parts[i] = s
  end
  local text = concat(parts, ",")
  if #text > MAX_CLAIM_BYTES then return nil end
  return text
end

-- identity is what the ACL and the upstream see of verified claims.
local function identity(claims, ip)
  local id = { sub = claims.sub, iss = claims.iss, groups = {}, scopes = {}, headers = {} }
  for _, ch in ipairs(state.options.claim_headers) do
    local v = claims[ch.claim]
    if v ~= nil then
      local text = claim_text(v)
      if text then
        id.headers[#id.headers + 1] = { ch.header, text }
      else
        ngx.log(ngx.INFO, "gateway: claim ", ch.claim, " not sent: not a single line of at most ", MAX_CLAIM_BYTES, " bytes")
      end
    end
  end
  for _, g in ipairs(list_of(claims[ip.groups_claim])) do
    if type(g) == "string" then id.groups[g] = true end
  end
  if type(claims.scope) == "string" then
    for s in claims.scope:gmatch("%S+") do id.scopes[s] = true end
  end
  for _, s in ipairs(list_of(claims.scp)) do
    if type(s) == "string" then id.scopes[s] = true end
  end
  return id
end

-- bearer returns the token of an Authorization header value, or nil and
-- a reason.
local function bearer(h)
  if h == nil then return nil, "no Authorization header" end
  if type(h) ~= "string" then return nil, "several Authorization headers" end
  if lower(sub(h, 1, 7)) ~= "bearer " then return nil, "not a bearer token" end
  return sub(h, 8)
end

-- path_ok tells whether the raw request path (query cut off) names the
-- same resource as nginx's normalized path, which is what the ACL sees.
-- Plain finds only: a pattern find would keep LuaJIT from compiling the
-- request path.
local function path_ok(raw, path)
  if not find(raw, "%", 1, true) and not find(raw, "+", 1, true) and not find(raw, "\\", 1, true) then
    -- Nothing that unescaping changes: the raw path must already be
    -- the normal form.
    return raw == path
  end
  local l = lower(raw)
  if find(l, "%2f", 1, true) or find(l, "%5c", 1, true) or find(raw, "\\", 1, true) then return false end
  return ngx.unescape_uri(raw) == path
end

-- run is the access phase of a route to service; mtls says whether the
-- route requires a verified client certificate, use_cache whether
-- verified tokens are cached. The arguments are constants of the
-- rendered configuration, so the request path reads no nginx variable
-- for them. Missing arguments fail closed: no service has no ACL (403),
-- and only mtls == false skips the certificate check.
function _M.run(service, mtls, use_cache)
  local headers, err = get_headers(MAX_HEADERS)
  if err == "truncated" then
    -- Not every header was seen, so not every forged identity header
    -- could be stripped.
    return ngx.exit(431)
  end
  local prefix = state.options.identity_prefix
  for name in pairs(headers) do
    if find(name, prefix, 1, true) == 1 then clear_header(name) end
  end

  -- The ACL sees nginx's normalized $uri; refuse requests whose raw path
  -- normalizes to something else, so the upstream gets what was checked.
  local var = ngx.var
  local raw = var.request_uri
  local q = find(raw, "?", 1, true)
  if q then raw = sub(raw, 1, q - 1) end
  local path = var.uri
  if not path_ok(raw, path) then return ngx.exit(400) end

  -- Anything but an explicit false asks for the certificate: a call
  -- rendered for other code must not skip the check.
  if mtls ~= false and var.ssl_client_verify ~= "SUCCESS" then
    ngx.log(ngx.INFO, "gateway: 403: no verified client certificate")
    return ngx.exit(403)
  end

  local st = state.current()
  if not st then return unauthorized("no policy loaded", true) end

  -- The cache is keyed by the whole header value: a hit is the same
  -- text that was parsed and verified before.
  local auth = headers["authorization"]
  local now = ngx.now()
  local id
  if use_cache and type(auth) == "string" then
    local hit = cache:get(auth)
    if hit and hit.version == st.keys_version and now < hit.expires then id = hit.id end
  end
  if not id then
    local tok, why = bearer(auth)
    if not tok then return unauthorized(why, false) end
    local claims, reason, ip, exp = jwt.verify(st.policy, tok, now)
    if not claims then return unauthorized(reason, true) end
    id = identity(claims, ip)
    local ttl = exp + ip.leeway - now
    if use_cache and ttl > 0 then
      cache:set(auth, { id = id, version = st.keys_version, expires = exp + ip.leeway }, ttl)
    end
  end

  local doc = st.acls[service]
  local method = get_method()
  local allowed, rule = false, 0
  if doc then
    allowed, rule = acl.evaluate(doc, id, method, path)
  end
  if not allowed then
    if doc and doc.shadow then
      ngx.log(ngx.WARN, "gateway: shadow deny service=", service, " sub=", id.sub, " rule=", rule, " ", method, " ", path)
    else
      ngx.log(ngx.INFO, "gateway: 403 service=", service, " sub=", id.sub, " rule=", rule)
      return ngx.exit(403)
    end
  end
  local options = state.options
  set_header(options.subject_header, id.sub)
  set_header(options.issuer_header, id.iss)
  local hs = id.headers
  for i = 1, #hs do
    set_header(hs[i][1], hs[i][2])
  end
end

return _M
