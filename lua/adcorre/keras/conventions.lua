--- adcorre.keras.conventions: what a Keras file does not store - the class
-- names of its outputs and the value range of its input - said once on the
-- command line (predict.lua, evaluate.lua, convert.lua) or in the REPL.
--
--   conventions.classes("fer2013", 7)       -> {"Anger", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"}
--   conventions.classes("angry,happy", 2)   -> {"Anger", "Happy"}
--   conventions.input_range("-1,1")         -> {-1, 1}
--
-- Named orders: fer2013 (Angry, Disgust, Fear, Happy, Sad, Surprise,
-- Neutral), rafdb (Surprise, Fear, Disgust, Happiness, Sadness, Anger,
-- Neutral), affectnet and canonical (Neutral, Happy, Sad, Surprise, Fear,
-- Disgust, Anger, Contempt). Every name maps to the canonical one
-- ("angry" -> Anger, "happiness" -> Happy); unknown names stay as given.
local ac = require("adcorre")

local M = {}

local ORDERS = {
  fer2013 = {"Anger", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"},
  rafdb = {"Surprise", "Fear", "Disgust", "Happy", "Sad", "Anger", "Neutral"},
  affectnet = ac.classes,
  canonical = ac.classes,
}
M.ORDERS = ORDERS

local SYNONYMS = {
  neutral = "Neutral", happy = "Happy", happiness = "Happy", joy = "Happy",
  sad = "Sad", sadness = "Sad", surprise = "Surprise", surprised = "Surprise",
  fear = "Fear", fearful = "Fear", scared = "Fear", disgust = "Disgust", disgusted = "Disgust",
  anger = "Anger", angry = "Anger", contempt = "Contempt",
}

--- The canonical name of a class name ("angry" -> "Anger"), or the name itself.
function M.canonical(name)
  return SYNONYMS[name:lower()] or name
end

--- Class names for a model with n outputs from spec (a named order or a
--- comma-separated list; nil: the canonical order).
function M.classes(spec, n, where)
  where = where or "classes"
  spec = spec or "canonical"
  local list = ORDERS[spec:lower()]
  local out = {}
  if list then
    if n > #list then
      error(("%s: '%s' names %d classes, the model has %d outputs"):format(where, spec, #list, n), 0)
    end
    for i = 1, n do out[i] = list[i] end
    return out
  end
  for name in (spec .. ","):gmatch("([^,]*),") do
    name = name:match("^%s*(.-)%s*$")
    if name == "" then error(("%s: empty class name in '%s'"):format(where, spec), 0) end
    out[#out + 1] = M.canonical(name)
  end
  if #out ~= n then
    error(("%s: %d class names given (%s), the model has %d outputs"):format(where, #out, spec, n), 0)
  end
  return out
end

--- {lo, hi} from "LO,HI" (nil: {0, 1}).
function M.input_range(s, where)
  where = where or "input range"
  if s == nil then return {0, 1} end
  if type(s) == "table" then s = table.concat(s, ",") end
  local a, b = tostring(s):match("^%s*([-+%d.eE]+)%s*,%s*([-+%d.eE]+)%s*$")
  local lo, hi = tonumber(a), tonumber(b)
  if not lo or not hi or lo >= hi then
    error(("%s: expected LO,HI with LO < HI (e.g. 0,1 or -1,1), got '%s'"):format(where, tostring(s)), 0)
  end
  return {lo, hi}
end

return M
