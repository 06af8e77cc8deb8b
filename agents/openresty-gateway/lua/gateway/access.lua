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

-- token returns the bearer token of the request, or nil and a reason.
local function token(headers)
  local h = headers["authorization"]
  if h == nil then return nil, "no Authorization header" end
  if type(h) ~= "string" then return nil, "several Authorization headers" end
  if lower(sub(h, 1, 7)) ~= "bearer " then return nil, "not a bearer token" end
  return sub(h, 8)
end

function _M.run()
  local headers, err = ngx.req.get_headers(MAX_HEADERS)
  if err == "truncated" then
    -- Not every header was seen, so not every forged identity header
    -- could be stripped.
    return ngx.exit(431)
  end
  local prefix = state.options.identity_prefix
  for name in pairs(headers) do
    if sub(name, 1, #prefix) == prefix then ngx.req.clear_header(name) end
  end

  -- The ACL sees nginx's normalized $uri; refuse requests whose raw path
  -- normalizes to something else, so the upstream gets what was checked.
  local raw = ngx.var.request_uri
  local q = find(raw, "?", 1, true)
  if q then raw = sub(raw, 1, q - 1) end
  local path = ngx.var.uri
  if find(raw, "%%2[fF]") or find(raw, "%%5[cC]") or find(raw, "\\", 1, true) or ngx.unescape_uri(raw) ~= path then
    return ngx.exit(400)
  end

  if ngx.var.gw_mtls == "1" and ngx.var.ssl_client_verify ~= "SUCCESS" then
    ngx.log(ngx.INFO, "gateway: 403: no verified client certificate")
    return ngx.exit(403)
  end

  local st = state.current()
  if not st then return unauthorized("no policy loaded", true) end

  local tok, why = token(headers)
  if not tok then return unauthorized(why, false) end

  local now = ngx.now()
  local id
  if ngx.var.gw_cache ~= "0" then
    local hit = cache:get(tok)
    if hit and hit.version == st.keys_version and now < hit.expires then id = hit.id end
  end
  if not id then
    local claims, reason, ip, exp = jwt.verify(st.policy, tok, now)
    if not claims then return unauthorized(reason, true) end
    id = identity(claims, ip)
    local ttl = exp + ip.leeway - now
    if ttl > 0 then
      cache:set(tok, { id = id, version = st.keys_version, expires = exp + ip.leeway }, ttl)
    end
  end

  local service = ngx.var.gw_service
  local doc = st.acls[service]
  local allowed, rule, name = false, 0, nil
  if doc then
    allowed, rule, name = acl.evaluate(doc, id, ngx.req.get_method(), path)
  end
  if not allowed then
    if doc and doc.shadow then
      ngx.log(ngx.WARN, "gateway: shadow deny service=", service, " sub=", id.sub, " rule=", rule, " ", ngx.req.get_method(), " ", path)
    else
      ngx.log(ngx.INFO, "gateway: 403 service=", service, " sub=", id.sub, " rule=", rule)
      return ngx.exit(403)
    end
  end
  ngx.req.set_header(state.options.subject_header, id.sub)
  ngx.req.set_header(state.options.issuer_header, id.iss)
  for _, h in ipairs(id.headers) do
    ngx.req.set_header(h[1], h[2])
  end
end

return _M
