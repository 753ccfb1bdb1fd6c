-- wrk script for bench/serve-s3-vs-fs.sh.
--
--   wrk ... -s bench/serve-s3-vs-fs.lua http://127.0.0.1:PORT -- PATHS_FILE
--
-- PATHS_FILE holds one path per line in the order to request them; the
-- script that writes it sets the traffic mix by how often each kind of path
-- appears. Every thread cycles through the whole list from its own offset.
-- At the end one RESULT line gives the figures the script tabulates.

local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  -- Requests are formatted once here: building one per call costs more
  -- than sitehost takes to answer it (see wrk's SCRIPTING notes).
  -- wrk.format adds wrk.headers, so `-H 'Host: ...'` is in every request.
  reqs = {}
  for line in io.lines(args[1]) do
    if line ~= "" then reqs[#reqs + 1] = wrk.format("GET", line) end
  end
  if #reqs == 0 then error("no paths in " .. tostring(args[1])) end
  -- Threads start far apart in the list, so they do not move in lockstep.
  pos = ((id or 0) * 7919) % #reqs
end

function request()
  pos = pos % #reqs + 1
  return reqs[pos]
end

-- done() prints the RESULT line; it lives beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk-result.lua")
