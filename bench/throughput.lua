-- wrk script for bench/throughput.py: a crowd at the live edge.
-- Requests alternate: the media playlist, then one of the newest `keep` parts it names, round robin.
-- Every playlist answer is parsed again, so against a live origin the parts follow the live edge;
-- against a static snapshot they stay the snapshot's newest parts.
-- Arguments (after `--`): playlist path, keep, then the parts to start with (names relative to the playlist).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  playlist_path = args[1]
  keep = tonumber(args[2])
  base_path = playlist_path:match("^(.*/)")
  parts = {}
  for i = 3, #args do
    parts[#parts + 1] = args[i]
  end
  want_playlist = false
  turn = 0
  -- Globals, so that done() can read them with thread:get().
  playlists, part_answers, not_ok = 0, 0, 0
  not_ok_codes, first_not_ok = "", ""
end

function request()
  want_playlist = not want_playlist
  if want_playlist or #parts == 0 then
    return wrk.format("GET", playlist_path)
  end
  turn = turn % #parts + 1
  return wrk.format("GET", base_path .. parts[turn])
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
    if not not_ok_codes:find(tostring(status), 1, true) then
      not_ok_codes = not_ok_codes .. " " .. status
    end
    if first_not_ok == "" then
      first_not_ok = status .. " " .. body:sub(1, 200):gsub('[%c"\\]', " ")
    end
    return
  end
  if body:sub(1, 7) == "#EXTM3U" then
    playlists = playlists + 1
    local found = {}
    for uri in body:gmatch('#EXT%-X%-PART:[^\n]-URI="([^"]+)"') do
      found[#found + 1] = uri
    end
    if #found > 0 then
      parts = {}
      for i = math.max(1, #found - keep + 1), #found do
        parts[#parts + 1] = found[i]
      end
    end
  else
    part_answers = part_answers + 1
  end
end

function done(summary, latency, requests)
  local p, q, bad, codes, example = 0, 0, 0, "", ""
  for _, thread in ipairs(threads) do
    p = p + thread:get("playlists")
    q = q + thread:get("part_answers")
    bad = bad + thread:get("not_ok")
    codes = codes .. thread:get("not_ok_codes")
    if example == "" then
      example = thread:get("first_not_ok")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "playlists": %d, "parts": %d, "not_ok": %d, ' ..
    '"not_ok_codes": "%s", "not_ok_example": "%s"}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    p, q, bad, codes, example))
end
