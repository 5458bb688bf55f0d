#!/usr/bin/env node
// Turns nsfwjs's bundled TF.js model into the usual TF.js pair:
//   model.json   {modelTopology, weightsManifest}
//   weights.bin  the manifest's shards concatenated in manifest order
//
// usage: node tools/nsfwjs_extract.js PACKAGE/dist/models/inception_v3 OUT_DIR
//
// nsfwjs ships each file as a browserify UMD bundle instead of JSON and
// binary shards: model.min.js exports the model.json object as a (minified)
// JavaScript object literal, and each group1-shardKofN.min.js exports its
// shard's bytes as one base64 string. The bundles are evaluated in a fresh
// vm context that offers only `module`/`exports` (no require, no globals).
// vm is not a security boundary: run this only on the pinned, checksummed
// package that weights/fetch.sh downloads.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

function fail(msg) {
  console.error(`nsfwjs_extract: ${msg}`);
  process.exit(1);
}

// Evaluates one UMD bundle and returns what it exports.
function loadBundle(file) {
  if (!fs.existsSync(file)) fail(`${file} does not exist`);
  const module = { exports: {} };
  vm.runInNewContext(fs.readFileSync(file, 'utf8'), { module, exports: module.exports }, { filename: file });
  return module.exports;
}

const BYTES_PER_VALUE = { float32: 4, int32: 4, uint16: 2, float16: 2, uint8: 1, bool: 1 };

function main() {
  const [dir, outDir] = process.argv.slice(2);
  if (!dir || !outDir) fail('usage: nsfwjs_extract.js MODEL_DIR OUT_DIR');

  const model = loadBundle(path.join(dir, 'model.min.js'));
  if (!model || typeof model.modelTopology !== 'object' || !Array.isArray(model.weightsManifest)) {
    fail('model.min.js does not export {modelTopology, weightsManifest}');
  }

  const shards = [];
  for (const group of model.weightsManifest) {
    for (const p of group.paths) {
      const file = path.join(dir, `${p}.min.js`);
      const b64 = loadBundle(file);
      if (typeof b64 !== 'string') fail(`${file} does not export a base64 string`);
      const bytes = Buffer.from(b64, 'base64');
      // Buffer.from skips invalid characters silently: insist on a clean round trip.
      if (bytes.toString('base64') !== b64) fail(`${file} is not canonical base64`);
      shards.push(bytes);
    }
  }
  const weights = Buffer.concat(shards);

  let expected = 0;
  for (const group of model.weightsManifest) {
    for (const w of group.weights) {
      const dtype = w.quantization ? w.quantization.dtype : w.dtype;
      const size = BYTES_PER_VALUE[dtype];
      if (!size) fail(`weight ${w.name} has unknown storage dtype ${dtype}`);
      expected += size * w.shape.reduce((a, b) => a * b, 1);
    }
  }
  if (expected !== weights.length) {
    fail(`the manifest describes ${expected} bytes but the shards hold ${weights.length}`);
  }

  fs.mkdirSync(outDir, { recursive: true });
  const json = { modelTopology: model.modelTopology, weightsManifest: model.weightsManifest };
  fs.writeFileSync(path.join(outDir, 'model.json'), JSON.stringify(json));
  fs.writeFileSync(path.join(outDir, 'weights.bin'), weights);
  const count = model.weightsManifest.reduce((n, g) => n + g.weights.length, 0);
  console.log(`nsfwjs_extract: ${count} weights, ${weights.length} bytes from ${shards.length} shards -> ${outDir}`);
}

main();
