// Runs a TF.js layers model with @tensorflow/tfjs on its pure JavaScript CPU
// backend, loading it through tfjs's own model.json + weight-shard loader
// (tf.io.http with a fetch that reads local files), as a browser would.
//   node check_tfjs.js MODEL_DIR INPUT.f32 N SIZE
// INPUT.f32: N x SIZE x SIZE x 3 little-endian float32 (NHWC). Prints one JSON
// line: {"tfjs": version, "backend": name, "probabilities": [[...], ...]}.
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const [modelDir, inputFile, n, size] = process.argv.slice(2);
  if (!modelDir || !inputFile || !n || !size) throw new Error('usage: node check_tfjs.js MODEL_DIR INPUT.f32 N SIZE');
  await tf.setBackend('cpu');
  const fetchFunc = async (file) => new Response(fs.readFileSync(file));
  const model = await tf.loadLayersModel(tf.io.http(path.resolve(modelDir, 'model.json'), { fetchFunc }));
  const buf = fs.readFileSync(inputFile);
  const values = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const x = tf.tensor4d(values, [Number(n), Number(size), Number(size), 3]);
  const probabilities = model.predict(x).arraySync();
  console.log(JSON.stringify({ tfjs: tf.version.tfjs, backend: tf.getBackend(), probabilities }));
}

main().catch((e) => {
  console.error(`check_tfjs: ${e.stack || e}`);
  process.exit(1);
});
