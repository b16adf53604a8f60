--- nn.BatchNorm2d(n [, eps [, momentum [, opts]]]): batch normalisation of
-- [N, C, H, W] input over N, H and W. See adcorre.nn.BatchNorm for the
-- conventions (PyTorch's momentum; Keras' 0.99 is 0.01 here).
local BatchNorm = require("adcorre.nn.BatchNorm")

local BatchNorm2d = BatchNorm.class("nn.BatchNorm2d", BatchNorm)
BatchNorm2d._ranks = { 4 }

return BatchNorm2d
