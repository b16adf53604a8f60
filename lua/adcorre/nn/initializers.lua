--- adcorre.nn.initializers: weight initialisation schemes, drawn from the
-- library generator (ac.manual_seed fixes them).
--   glorot / glorot_uniform : U(-l, l), l = sqrt(6 / (fan_in + fan_out))   (Keras' default)
--   glorot_normal           : N(0, 2 / (fan_in + fan_out))
--   he / he_uniform         : U(-l, l), l = sqrt(6 / fan_in)
--   he_normal               : N(0, 2 / fan_in)  (not truncated)
--   zeros
local M = {}

function M.fill(t, scheme, fan_in, fan_out)
  scheme = scheme or "glorot"
  if scheme == "glorot" or scheme == "glorot_uniform" then
    local l = math.sqrt(6 / (fan_in + fan_out))
    t:uniform_(-l, l)
  elseif scheme == "glorot_normal" then
    t:normal_(0, math.sqrt(2 / (fan_in + fan_out)))
  elseif scheme == "he" or scheme == "he_uniform" then
    local l = math.sqrt(6 / fan_in)
    t:uniform_(-l, l)
  elseif scheme == "he_normal" then
    t:normal_(0, math.sqrt(2 / fan_in))
  elseif scheme == "zeros" then
    t:zero()
  else
    error(("unknown initialisation '%s' (glorot, glorot_normal, he, he_normal, zeros)"):format(tostring(scheme)), 3)
  end
  return t
end

return M
