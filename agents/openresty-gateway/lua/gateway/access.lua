-- The access phase of every routed location: identity headers stripped,
-- path checked, client certificate (when the route asks for one), token
-- verified (or found in this worker's cache), ACL applied. Every path
-- that is not an explicit allow ends the request.
local lrucache = require "resty.lrucache"
local jwt = require "gateway.jwt"
local acl = require "gateway.acl"
local state = require "gateway.state"

local lower, find, sub = string.lower, string.find, string.sub

local _M = {}

local MAX_HEADERS = 100
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

-- identity is what the ACL and the upstream see of verified claims.
local function identity(claims, ip)
  local id = { sub = claims.sub, iss = claims.iss, groups = {}, scopes = {} }
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
end

return _M
