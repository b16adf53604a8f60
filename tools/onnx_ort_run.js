#!/usr/bin/env node
// tools/onnx_ort_run.js - runs an ONNX model with ONNX Runtime (npm
// onnxruntime-node, CPU provider) on a float32 .npy input and writes each
// output as OUTDIR/<name>.npy (float32, C order). The independent check of
// ac.onnx.export (spec/onnx_spec.lua, tools/onnx_check.lua).
//
//   node tools/onnx_ort_run.js MODEL.onnx INPUT.npy OUTDIR [--threads N]
// ONNX Runtime is looked up in $ORT_DIR/node_modules (default build/ort,
// prepared by `make ort`). Prints one JSON line: {"outputs": {name: shape}}.
'use strict';
const fs = require('fs');
const path = require('path');
const { loadOrt, readNpy, writeNpy } = require('./onnx_ort_util.js');

async function main() {
  const args = process.argv.slice(2);
  let threads = 1;
  const ti = args.indexOf('--threads');
  if (ti >= 0) { threads = parseInt(args[ti + 1], 10); args.splice(ti, 2); }
  if (args.length !== 3) {
    console.error('usage: node tools/onnx_ort_run.js MODEL.onnx INPUT.npy OUTDIR [--threads N]');
    process.exit(2);
  }
  const [model, input, outdir] = args;
  const ort = loadOrt();
  const x = readNpy(input);
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const feeds = {};
  feeds[sess.inputNames[0]] = new ort.Tensor('float32', x.data, x.shape);
  const res = await sess.run(feeds);
  fs.mkdirSync(outdir, { recursive: true });
  const shapes = {};
  for (const name of sess.outputNames) {
    const t = res[name];
    writeNpy(path.join(outdir, name + '.npy'), t.data, t.dims);
    shapes[name] = t.dims;
  }
  console.log(JSON.stringify({ outputs: shapes }));
}

main().catch((e) => { console.error('onnx_ort_run: ' + (e && e.message ? e.message : e)); process.exit(1); });
