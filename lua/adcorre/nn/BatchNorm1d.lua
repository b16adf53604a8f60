--- nn.BatchNorm1d(n [, eps [, momentum [, opts]]]): batch normalisation of
-- [N, C] (or [N, C, L]) input over N (and L). See adcorre.nn.BatchNorm.
local BatchNorm = require("adcorre.nn.BatchNorm")

local BatchNorm1d = BatchNorm.class("nn.BatchNorm1d", BatchNorm)
BatchNorm1d._ranks = { 2, 3 }

return BatchNorm1d
