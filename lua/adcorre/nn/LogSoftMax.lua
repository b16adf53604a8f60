--- nn.LogSoftMax(): log(softmax(x)) over the last dimension, computed
-- stably (x - logsumexp(x)).
local SoftMax = require("adcorre.nn.SoftMax")

local LogSoftMax = SoftMax.class("nn.LogSoftMax", SoftMax)
LogSoftMax._fwd = "logsoftmax_forward"
LogSoftMax._bwd = "logsoftmax_backward_input"

return LogSoftMax
