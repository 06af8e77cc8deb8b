-- Runs in the master (init_by_lua) as root: loads every module before the
-- workers fork, takes the rendered options, and loads the persisted state.
local state = require "gateway.state"
require "gateway.access"
require "gateway.admin"

local _M = {}

function _M.master(opts)
  for k, v in pairs(opts.options or {}) do state.options[k] = v end
  state.options.identity_prefix = string.lower(state.options.identity_prefix)
  if opts.state_file then state.load_file(opts.state_file) end
end

return _M
