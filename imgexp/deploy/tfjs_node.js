// Runs a TF.js graph model in Node with @tensorflow/tfjs (what imgexp.export checks a tfjs export with).
// node tfjs_node.js MODEL_DIR IMAGES.f32 '[N,H,W,3]' BACKENDS(comma-separated) OUT.json
// OUT.json: {backend: {probabilities: [...], shape: [N, C], latency_ms: median batch-1 ms}}
const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs");
require("@tensorflow/tfjs-backend-wasm");

const BATCH = 32;
const WARMUP = 3, MIN_CALLS = 5, MAX_CALLS = 50, TIMED_MS = 100;  // as imgexp/latency.py

function fromDisk(dir) {  // tf.io.fileSystem is tfjs-node's; plain tfjs takes an IOHandler
  return {
    load: async () => {
      const model = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
      const specs = [], shards = [];
      for (const group of model.weightsManifest) {
        specs.push(...group.weights);
        for (const shard of group.paths) shards.push(fs.readFileSync(path.join(dir, path.basename(shard))));
      }
      const data = Buffer.concat(shards);
      return {modelTopology: model.modelTopology, format: model.format, generatedBy: model.generatedBy,
              convertedBy: model.convertedBy, signature: model.signature, weightSpecs: specs,
              weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)};
    },
  };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function latency(model, one) {
  const call = async () => { const y = model.predict(one); await y.data(); y.dispose(); };
  for (let i = 0; i < WARMUP; i++) await call();
  const times = [];
  const started = performance.now();
  while (times.length < MAX_CALLS && (times.length < MIN_CALLS || performance.now() - started < TIMED_MS)) {
    const begin = performance.now();
    await call();
    times.push(performance.now() - begin);
  }
  return median(times);
}

async function main() {
  const [dir, imagesFile, shapeJson, backends, outFile] = process.argv.slice(2);
  const shape = JSON.parse(shapeJson);
  const raw = fs.readFileSync(imagesFile);
  const pixels = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const results = {};
  for (const backend of backends.split(",")) {
    if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend ${backend} did not start`);
    await tf.ready();
    const model = await tf.loadGraphModel(fromDisk(dir));
    const images = tf.tensor(pixels, shape);
    const probabilities = [];
    let classes = 0;
    for (let start = 0; start < shape[0]; start += BATCH) {
      const batch = images.slice(start, Math.min(BATCH, shape[0] - start));
      const y = model.predict(batch);
      classes = y.shape[1];
      probabilities.push(...(await y.data()));
      tf.dispose([batch, y]);
    }
    const one = images.slice(0, 1);
    results[backend] = {probabilities, shape: [shape[0], classes], latency_ms: await latency(model, one)};
    tf.dispose([one, images]);
    model.dispose();
  }
  fs.writeFileSync(outFile, JSON.stringify(results));
}

main().catch((err) => { console.error(String(err && err.message || err)); process.exit(1); });
