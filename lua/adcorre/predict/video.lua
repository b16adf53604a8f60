--- adcorre.predict.video: videos through Debian's ffmpeg, as imageio-ffmpeg
-- does: ffprobe gives the size and frame rate, one ffmpeg process decodes
-- to raw RGB frames on a pipe, another (for an annotated copy) encodes raw
-- frames from a pipe. One frame is held at a time, so memory does not grow
-- with the length of the video.
--
--   local video = require("adcorre.predict.video")
--   for frame, t, img in video.frames("clip.mp4") do ... end   -- img: [3, H, W]
local core = require("adcorre.core")
local json = require("adcorre.json")

local M = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- Errors unless ffmpeg and ffprobe are on the PATH.
function M.check_ffmpeg()
  local p = io.popen("command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 && echo ok")
  local ok = p:read("l")
  p:close()
  if ok ~= "ok" then
    error("predict: video needs ffmpeg and ffprobe on the PATH (Debian package ffmpeg: apt-get install ffmpeg)", 0)
  end
end

--- {width, height, fps, frames (may be nil)} of the first video stream.
function M.probe(path)
  M.check_ffmpeg()
  local f = io.open(path, "rb")
  if not f then error(("predict: video '%s' does not exist or cannot be read"):format(path), 0) end
  f:close()
  local p = io.popen("ffprobe -v error -select_streams v:0 -show_entries stream=width,height,r_frame_rate,nb_frames "
    .. "-of json " .. q(path) .. " 2>&1")
  local out = p:read("a")
  p:close()
  local ok, info = pcall(json.decode, out)
  local s = ok and type(info) == "table" and info.streams and info.streams[1]
  if not s or not s.width then
    error(("predict: '%s' has no video stream ffprobe can read (%s)"):format(path, (out:gsub("%s+$", ""))), 0)
  end
  local n, d = tostring(s.r_frame_rate or "0/1"):match("(%d+)/(%d+)")
  local fps = (tonumber(n) or 0) / math.max(tonumber(d) or 1, 1)
  if fps <= 0 then fps = 25 end
  return { width = math.tointeger(s.width), height = math.tointeger(s.height), fps = fps,
           frames = math.tointeger(tonumber(s.nb_frames or "")) }
end

--- Iterator over frames: frame index (0-based), time in seconds, and the
-- frame as a float [3, H, W] tensor (every `every`-th frame is decoded to a
-- tensor; the others give nil). The decoder's failure is an error at the end.
function M.frames(path, every)
  every = every or 1
  local info = M.probe(path)
  local W, H = info.width, info.height
  local n = W * H * 3
  local errfile = os.tmpname()
  local pipe = io.popen("ffmpeg -v error -nostdin -i " .. q(path) .. " -f rawvideo -pix_fmt rgb24 - 2>" .. q(errfile), "r")
  local i = -1
  local function finish(partial)
    local ok, _, code = pipe:close()
    local f = io.open(errfile, "r")
    local msg = f and f:read("a") or ""
    if f then f:close() end
    os.remove(errfile)
    if partial then
      io.stderr:write(("predict: %s: frame %d is incomplete (%d of %d bytes), stopped there\n"):format(path, i,
        partial, n))
    end
    if not ok and not partial then
      error(("predict: ffmpeg could not decode '%s' (exit %s): %s"):format(path, tostring(code),
        (msg:gsub("%s+$", ""))), 0)
    end
  end
  local done = false
  return function()
    if done then return nil end
    local bytes = pipe:read(n)
    i = i + 1
    if not bytes or #bytes < n then
      done = true
      finish(bytes and #bytes > 0 and #bytes or nil)
      return nil
    end
    local t = i / info.fps
    if i % every ~= 0 then return i, t, nil, bytes end
    return i, t, core.face.from_rgb24(bytes, W, H), bytes
  end, info
end

--- An encoder writing RGB frames to `path` (through a temporary name that
-- :close() renames): w:write(img [3, H, W]) or w:write_bytes(rgb24).
function M.writer(path, width, height, fps)
  M.check_ffmpeg()
  local dir, base = path:match("^(.*/)([^/]+)$")
  dir, base = dir or "", base or path
  local ext = base:match("%.([%w]+)$") or "mp4"
  local tmp = ("%s.%s.partial-%d.%s"):format(dir, base, math.random(1, 1e9), ext)
  local errfile = os.tmpname()
  local pipe = io.popen(("ffmpeg -v error -y -f rawvideo -pix_fmt rgb24 -s %dx%d -r %s -i - -c:v libx264 "
    .. "-pix_fmt yuv420p -vf 'pad=ceil(iw/2)*2:ceil(ih/2)*2' %s 2>%s"):format(width, height, ("%.6g"):format(fps),
    q(tmp), q(errfile)), "w")
  local w = { frames = 0 }
  function w:write_bytes(b) pipe:write(b); self.frames = self.frames + 1 end
  function w:write(img) self:write_bytes(core.face.rgb24(img)) end
  function w:close()
    local ok, _, code = pipe:close()
    local f = io.open(errfile, "r")
    local msg = f and f:read("a") or ""
    if f then f:close() end
    os.remove(errfile)
    if not ok then
      os.remove(tmp)
      error(("predict: ffmpeg could not write '%s' (exit %s): %s"):format(path, tostring(code), msg), 0)
    end
    local r, e = os.rename(tmp, path)
    if not r then error(("predict: cannot rename '%s' to '%s' (%s)"):format(tmp, path, tostring(e)), 0) end
  end
  return w
end

return M
