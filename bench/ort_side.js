#!/usr/bin/env node
// bench/ort_side.js - the ONNX Runtime side of `make bench`: inference on
// the model that ac.onnx.export wrote, timed as bench/ac_side.lua times
// adcorre's (a batch, then batch-1 latency).
//
//   node bench/ort_side.js --onnx FILE --batch 64 [--infer-iters 10]
//       [--lat-iters 50] [--warmup 2] [--threads 2] [--profile 0|1]
//
// Session: CPU execution provider, intraOpNumThreads = --threads,
// interOpNumThreads 1, sequential execution, graph optimisations "all".
// --profile 1 runs one more batch in a profiling session and reports the
// time per op type (ONNX Runtime's own profiler, "Node" events).
// Prints one JSON line: infer_ips, latency_ms, rss_kib, profile_infer.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { loadOrt } = require('../tools/onnx_ort_util.js');

const o = { onnx: null, batch: 64, 'infer-iters': 10, 'lat-iters': 50, warmup: 2, threads: 2, profile: 0 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = (argv[i].match(/^--([\w-]+)$/) || [])[1];
  if (!k || !(k in o) || argv[i + 1] === undefined) {
    console.error('ort_side: bad argument ' + argv[i]);
    process.exit(2);
  }
  o[k] = k === 'onnx' ? argv[i + 1] : parseInt(argv[i + 1], 10);
}
if (!o.onnx) { console.error('ort_side: --onnx FILE is required'); process.exit(2); }

function vmhwm() {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/);
  return m ? Number(m[1]) : 0;
}

function now() { return Number(process.hrtime.bigint()) / 1e9; }

async function main() {
  const ort = loadOrt();
  const opts = {
    executionProviders: ['cpu'], intraOpNumThreads: o.threads, interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: 'all',
  };
  const sess = await ort.InferenceSession.create(o.onnx, opts);
  const name = sess.inputNames[0];
  const meta = sess.inputMetadata ? sess.inputMetadata[0] : null;
  let dims = meta && meta.shape ? meta.shape.slice(1).map(Number) : null;
  if (!dims || dims.some((d) => !(d > 0))) {
    // the shape from adcorre's metadata ("C,H,W")
    dims = null;
  }
  const shape = dims ? [o.batch, ...dims] : null;
  if (!shape) throw new Error('cannot read the input shape of ' + o.onnx);
  const n = shape.reduce((a, c) => a * c, 1);
  const data = new Float32Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2147483648; data[i] = s / 2147483648; }
  const x = new ort.Tensor('float32', data, shape);
  const res = { side: 'onnxruntime', batch: o.batch, threads: o.threads, ort_version: ort.env.versions ? ort.env.versions.common : undefined };
  const times = [];
  for (let it = 0; it < o.warmup + o['infer-iters']; it++) {
    const t0 = now();
    await sess.run({ [name]: x });
    const dt = now() - t0;
    if (it >= o.warmup) times.push(dt);
  }
  res.infer_batch_s = times;
  res.infer_ips = o.batch * times.length / times.reduce((a, c) => a + c, 0);
  const x1 = new ort.Tensor('float32', data.subarray(0, n / o.batch), [1, ...dims]);
  const lat = [];
  for (let it = 0; it < o.warmup + o['lat-iters']; it++) {
    const t0 = now();
    await sess.run({ [name]: x1 });
    const dt = now() - t0;
    if (it >= o.warmup) lat.push(dt);
  }
  lat.sort((a, b) => a - b);
  res.latency_ms = 1e3 * lat[Math.floor(lat.length / 2)];
  res.rss_kib = vmhwm();
  if (o.profile === 1) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ortprof-'));
    const ps = await ort.InferenceSession.create(o.onnx, { ...opts, enableProfiling: true,
      profileFilePrefix: path.join(dir, 'p') });
    await ps.run({ [name]: x }); // warm-up inside the profile, dropped below
    const t0 = now();
    await ps.run({ [name]: x });
    res.profile_infer_s = now() - t0;
    const file = ps.endProfiling ? ps.endProfiling() : null;
    const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
    const trace = JSON.parse(fs.readFileSync(file && fs.existsSync(file) ? file : files[0], 'utf8'));
    // Node events of the last run only: those after the last "model_run" start but one
    const runs = trace.filter((e) => e.cat === 'Session' && e.name === 'model_run');
    const last = runs.length ? runs[runs.length - 1] : null;
    const by = {};
    for (const e of trace) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      if (last && (e.ts < last.ts || e.ts > last.ts + last.dur)) continue;
      const op = (e.args && e.args.op_name) || '?';
      by[op] = (by[op] || 0) + e.dur / 1e6;
    }
    res.profile_infer = Object.keys(by).sort((a, b) => by[b] - by[a]).map((k) => ({ kind: k, time: by[k] }));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(res));
}

main().catch((e) => { console.error('ort_side: ' + (e && e.message ? e.message : e)); process.exit(1); });
