// Runs a TF.js layers model as a model.json + weights.bin pair (what
// tools/nsfwjs_extract.js writes) with @tensorflow/tfjs on its pure
// JavaScript CPU backend, and writes one named layer's output:
//   node tfjs_layer_output.js MODEL_DIR LAYER INPUT.f32 N SIZE OUTPUT.f32
// INPUT.f32: N x SIZE x SIZE x 3 little-endian float32 (NHWC, preprocessed);
// OUTPUT.f32: the layer's output, little-endian float32 in its NHWC order.
// Prints one JSON line: {"tfjs": version, "backend": name, "shape": [...],
// "native": the model's own input side}.
//
// At a SIZE other than the model's own input side, the topology is cut to
// LAYER and the layers it reads (a Flatten + Dense top fixes the input
// size) and its InputLayer is given SIZE x SIZE: the same layers and weights
// at another input size, as Keras builds a convolutional base for any size.
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

const BYTES_PER_VALUE = { float32: 4, int32: 4, uint16: 2, float16: 2, uint8: 1, bool: 1 };

async function main() {
  const [modelDir, layer, inputFile, n, size, outputFile] = process.argv.slice(2);
  if (!outputFile) throw new Error('usage: node tfjs_layer_output.js MODEL_DIR LAYER INPUT.f32 N SIZE OUTPUT.f32');
  await tf.setBackend('cpu');
  const json = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
  const config = (json.modelTopology.model_config || json.modelTopology).config;
  const input = config.layers.find((l) => l.class_name === 'InputLayer');
  const native = input.config.batch_input_shape[1];
  if (Number(size) !== native) {
    const byName = new Map(config.layers.map((l) => [l.name, l]));
    const keep = new Set();
    const visit = (name) => {
      if (keep.has(name)) return;
      if (!byName.has(name)) throw new Error(`model.json has no layer '${name}'`);
      keep.add(name);
      for (const node of byName.get(name).inbound_nodes) for (const [from] of node) visit(from);
    };
    visit(layer);
    config.layers = config.layers.filter((l) => keep.has(l.name));
    config.output_layers = [[layer, 0, 0]];
    input.config.batch_input_shape = [null, Number(size), Number(size), 3];
  }
  const bin = fs.readFileSync(path.join(modelDir, 'weights.bin'));
  // The manifest's weights in order describe weights.bin back to back
  // (nsfwjs_extract.js checked the sizes); those of layers cut away are dropped.
  const kept = new Set(config.layers.map((l) => l.name));
  const weightSpecs = [];
  const chunks = [];
  let offset = 0;
  for (const spec of json.weightsManifest.flatMap((group) => group.weights)) {
    const dtype = spec.quantization ? spec.quantization.dtype : spec.dtype;
    const bytes = BYTES_PER_VALUE[dtype] * spec.shape.reduce((a, b) => a * b, 1);
    if (kept.has(spec.name.split('/')[0])) {
      weightSpecs.push(spec);
      chunks.push(bin.subarray(offset, offset + bytes));
    }
    offset += bytes;
  }
  const data = Buffer.concat(chunks);
  const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.length);
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
  const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer(layer).output });
  const buf = fs.readFileSync(inputFile);
  const values = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const x = tf.tensor4d(values, [Number(n), Number(size), Number(size), 3]);
  const y = sub.predict(x);
  const out = y.dataSync();
  fs.writeFileSync(outputFile, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  console.log(JSON.stringify({ tfjs: tf.version.tfjs, backend: tf.getBackend(), shape: y.shape, native }));
}

main().catch((e) => {
  console.error(`tfjs_layer_output: ${e.stack || e}`);
  process.exit(1);
});
