--- adcorre.plot: figures as PNG files, drawn on the library's raster canvas.
--
--   ac.plot.confusion("cm.png", M, ac.classes, {title = "Test"})     -- heat map, % in cells
--   ac.plot.scatter("emb.png", XY, labels, names, {title = "PCA"})  -- XY [N,2], labels 1-based
--   ac.plot.curves("loss.png", {series = {{name = "train", x = {1,2,3}, y = {0.9,0.6,0.5}}},
--                               xlabel = "epoch", ylabel = "loss"})
--   ac.plot.embedding("tsne.png", E, labels, names, {method = "tsne"})
--   local Y = ac.plot.pca(X, 2) ; local Y2, kl = ac.plot.tsne(X, {seed = 1})
--
-- Every function checks its arguments before drawing, writes the file
-- atomically (temporary name + rename) and returns the path and a layout
-- table (where the plot area or the matrix cells are, in pixels). The canvas
-- itself is ac.plot.canvas(w, h [, bg]) (see doc/plots.md).
local core = require("adcorre.core")
local C = core.plot

local plot = {}

plot.canvas = C.canvas
plot.colormap = C.colormap
plot.palette = C.palette
plot.text_size = C.text_size
--- Lower-level t-SNE pieces: P = tsne_affinities(X, perplexity) (joint, symmetric,
-- sums to 1) and grad, kl = tsne_gradient(P, Y [, exaggeration]).
plot.tsne_affinities = C.tsne_affinities
plot.tsne_gradient = C.tsne_gradient

-- One file per figure (lua/adcorre/plot/): the shared frame in util.lua.
plot.ticks = require("adcorre.plot.util").ticks
plot.confusion = require("adcorre.plot.confusion").confusion
plot.scatter = require("adcorre.plot.scatter").scatter
plot.curves = require("adcorre.plot.curves").curves
local projection = require("adcorre.plot.projection")
plot.pca, plot.tsne, plot.embedding = projection.pca, projection.tsne, projection.embedding

return plot
