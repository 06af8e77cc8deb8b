-- The companion's endpoint, served only on a unix socket inside the
-- root-only state directory: PUT /state stores a new state after it
-- compiled here, GET /state reports the versions in force.
local cjson = require "cjson.safe"
local state = require "gateway.state"

local _M = {}

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(body))
  return ngx.exit(status)
end

function _M.handle()
  local method = ngx.req.get_method()
  if method == "PUT" then
    ngx.req.read_body()
    local text = ngx.req.get_body_data()
    if not text then return reply(400, { error = "empty or oversized body" }) end
    local c, err = state.try_compile(text)
    if not c then return reply(422, { error = err }) end
    local ok, serr = state.store(text, c.version)
    if not ok then return reply(507, { error = serr }) end
    return reply(200, { version = c.version })
  elseif method == "GET" then
    local c = state.current()
    if not c then return reply(200, { version = cjson.null }) end
    local acls = {}
    for svc, d in pairs(c.acls) do acls[svc] = d.digest end
    return reply(200, { version = c.version, keys_version = c.keys_version, acls = acls })
  end
  return reply(405, { error = "method not allowed" })
end

return _M
