--- examples/ablation.lua - the Ad-Corre ablation study runner: every loss
-- variant trained with the same seeds, network and data, evaluated at each
-- epoch of a list, then summarised with means, standard deviations, 95 %
-- confidence intervals and a paired comparison against CE over the same
-- seeds, as OUT/ablation.md (Markdown tables), OUT/ablation.png (accuracy
-- against epochs) and OUT/results.jsonl (one line per run).
--
--   lua5.4 examples/ablation.lua --dataset synthfer --epochs 3 --variants ce,adcorre
--   lua5.4 examples/ablation.lua --dataset npy --data out/fmnist --augment none --batch 64 \
--       --seeds 5 --epochs 3,20 --variants ce,adcorre,detached --threads 1 --out out/ablation
--   lua5.4 examples/ablation.lua --report-only --out out/ablation     # tables again from results.jsonl
--
-- Takes every option of train.lua (see --help). Runs already in
-- results.jsonl (same variant, seed and epochs) are skipped, so a stopped
-- study continues where it stopped and more seeds or variants can be added.
local ac = require("adcorre")
local cli = require("adcorre.cli")
local json = require("adcorre.json")
local A = require("adcorre.ablation")
local report = require("adcorre.ablation_report")

local parser = cli.train_parser({ epoch_list = true })
parser:name("ablation.lua")
parser:description("Ad-Corre ablation study: train one network per loss variant and seed, evaluate at a list of "
  .. "epochs, and report mean, sd, 95 % CI and a paired comparison against CE as Markdown and a plot.")
parser:option("--seeds", "Number of seeds per variant: --seed, --seed + 1, ...", "1"):convert(tonumber)
parser:option("--variants", "Comma-separated variants: ce (CE only), fd (CE + FD), fdmd (CE + FD + MD), "
  .. "adcorre (CE + FD + MD + ED), noadaptive (FD not adaptive), mdref (MD over all classes as released), "
  .. "reference (the released code's balance), detached (the released balance with FD, MD and ED detached: "
  .. "what the released code trains), warmup (CE only for --warmup epochs, then Ad-Corre); all; none.",
  "ce,fd,fdmd,adcorre")
parser:option("--lambdas", "Lambda sweep: one Ad-Corre variant per comma-separated CE weight, e.g. 1,20,50.", "")
parser:option("--warmup", "Epochs of CE only in the warmup variant.", "2"):convert(tonumber)
parser:flag("--no-ncm", "Skip the nearest-class-mean accuracy of the embeddings (one pass over the training set "
  .. "per evaluated epoch).")
parser:option("--embedding-plots", "Variants whose first-seed embeddings at the last epoch are drawn as "
  .. "OUT/embeddings_<variant>_{pca,tsne}.png ('' = none).", "ce,adcorre")
parser:option("--embedding-points", "Test samples in the embedding plots.", "1000"):convert(tonumber)
parser:option("--results", "Results file (default OUT/results.jsonl).")
parser:option("--title", "Title of the report.", "Ad-Corre ablation")
parser:flag("--report-only", "Write the report from the results file without training.")
parser:epilog("Each run is evaluated only at the listed epochs (no selection on the test set). With a schedule "
  .. "that does not depend on the total length (none, step, cyclic; the time decay) one run to the largest epoch "
  .. "gives every listed epoch, identical to separate shorter runs; with cosine each length is trained separately.")
local args = parser:parse()
local say = cli.printer(args.json)
local results_path = args.results or (args.out .. "/results.jsonl")
cli.mkdir(args.out)

local epochs = A.split_list(args.epochs, "--epochs", true)
table.sort(epochs)
for _, e in ipairs(epochs) do
  if e < 1 or e ~= math.floor(e) then error("--epochs: " .. tostring(e) .. " is not a positive whole number", 0) end
end
if #epochs == 0 then error("--epochs: give at least one epoch, e.g. 3,20", 0) end
if not (args.seeds >= 1) then error("--seeds must be at least 1", 0) end
local epochs_key = table.concat(epochs, ",")

-- the settings every run of one results file shares (not the loss, not the seed)
local function fingerprint(a)
  local s = cli.settings(a)
  for _, k in ipairs({ "no_fd", "no_md", "no_ed", "ce_only", "no_adaptive", "md_mode", "reference", "detach",
    "lambda", "seed" }) do s[k] = nil end
  s.threads = nil
  return json.encode(s)
end

local function read_results(path)
  local runs = {}
  local f = io.open(path, "r")
  if not f then return runs end
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local ok, r = pcall(json.decode, line)
      if not ok or type(r) ~= "table" then error(("%s:%d: not a JSON record"):format(path, n), 0) end
      runs[#runs + 1] = r
    end
  end
  f:close()
  return runs
end

local function append(path, rec)
  local f = assert(io.open(path, "a"))
  f:write(json.encode(rec), "\n")
  f:close()
end

local runs = read_results(results_path)
if not args.report_only then
  ac.set_num_threads(args.threads)
  local lambdas = A.split_list(args.lambdas, "--lambdas", true)
  local variants = A.select_variants(args.variants, { lambdas = lambdas })
  local fp = fingerprint(args)
  local done = {}
  for _, r in ipairs(runs) do
    if r.settings ~= fp then
      error(("%s holds runs with other settings (%s); use another --out or --results"):format(results_path,
        tostring(r.settings)), 0)
    end
    done[r.variant .. "|" .. r.seed .. "|" .. r.epochs_key] = true
  end
  local plot_ids = {}
  for _, id in ipairs(A.split_list(args.embedding_plots, "--embedding-plots")) do plot_ids[id] = true end
  local data = A.open(args)
  say(("data: %s, train %d, %s %d, %d classes; epochs %s; seeds %d..%d; %d variants"):format(args.dataset,
    #data.train, data.info.eval_split, #data.eval, #data.info.classes, epochs_key, args.seed,
    args.seed + args.seeds - 1, #variants))
  local total, k = args.seeds * #variants, 0
  for seed = args.seed, args.seed + args.seeds - 1 do            -- seed-major: a stopped study stays paired
    for _, v in ipairs(variants) do
      k = k + 1
      if done[v.id .. "|" .. seed .. "|" .. epochs_key] then
        say(("[%d/%d] %s, seed %d: already in %s"):format(k, total, v.name, seed, results_path))
      else
        local on_emb
        if seed == args.seed and plot_ids[v.id] then
          on_emb = function(epoch, r)
            if epoch ~= epochs[#epochs] then return end
            local n = math.min(args.embedding_points, r.embeddings:size(1))
            local X, y = r.embeddings:narrow(1, 1, n), r.labels:narrow(1, 1, n)
            for _, m in ipairs({ "pca", "tsne" }) do
              ac.plot.embedding(("%s/embeddings_%s_%s.png"):format(args.out, v.id, m), X, y, data.info.classes,
                { method = m, title = ("%s: epoch %d, seed %d, %s"):format(v.id, epoch, seed,
                  m == "pca" and "PCA" or "t-SNE") })
            end
          end
        end
        local rec = A.run(v, seed, args, data, {
          epochs = epochs, ncm = not args.no_ncm, warmup = args.warmup, on_embeddings = on_emb,
          on_epoch = function(p)
            say(("[%d/%d] %s, seed %d, epoch %d: test %.2f%%, mean class %.2f%%%s, train loss %.4f (%.0f s/epoch)")
              :format(k, total, v.name, seed, p.epoch, 100 * p.accuracy, 100 * p.mean_class_accuracy,
                p.ncm and (", NCM %.2f%%"):format(100 * p.ncm) or "", p.train_loss, p.seconds))
          end,
        })
        rec.model = nil
        rec.settings, rec.epochs_key, rec.dataset = fp, epochs_key, args.dataset
        append(results_path, rec)
        runs[#runs + 1] = rec
      end
    end
  end
end

if #runs == 0 then error("no runs in " .. results_path .. " (run without --report-only first)", 0) end
local md, summary = report.markdown(runs, { title = args.title })
local md_path = args.out .. "/ablation.md"
local tmp = md_path .. ".tmp"
local f = assert(io.open(tmp, "w"))
f:write(md)
f:close()
assert(os.rename(tmp, md_path))
if not args.no_plots then report.plot(args.out .. "/ablation.png", summary, { title = args.title }) end
say(md)
if args.json then io.stdout:write(json.encode({ ablation = summary, results = results_path }), "\n") end
