// Checks an optimised WebAssembly module for `cargo xtask build-client`:
//
//   node web/tools/validate-wasm.mjs <optimised.wasm> <wasm-bindgen output.wasm>
//
// The module must compile in V8 (the engine of Chromium and Node.js), and
// import and export exactly what wasm-bindgen's module did, since the glue
// was generated for that one. Exits non-zero with the reason otherwise.

import { readFileSync } from "node:fs";

const [optimised, reference] = process.argv.slice(2);
if (!optimised || !reference) {
  console.error("usage: node validate-wasm.mjs <optimised.wasm> <reference.wasm>");
  process.exit(2);
}

const compile = (path) => {
  try {
    return new WebAssembly.Module(readFileSync(path));
  } catch (e) {
    console.error(`validate-wasm: ${path} does not compile: ${e.message}`);
    process.exit(1);
  }
};

const describe = (module) => ({
  imports: WebAssembly.Module.imports(module)
    .map((i) => `${i.module}.${i.name}:${i.kind}`)
    .sort(),
  exports: WebAssembly.Module.exports(module)
    .map((e) => `${e.name}:${e.kind}`)
    .sort(),
});

const got = describe(compile(optimised));
const want = describe(compile(reference));
for (const part of ["imports", "exports"]) {
  const missing = want[part].filter((x) => !got[part].includes(x));
  const extra = got[part].filter((x) => !want[part].includes(x));
  if (missing.length || extra.length) {
    console.error(
      `validate-wasm: ${part} differ from wasm-bindgen's module: ` +
        `missing [${missing.join(", ")}], extra [${extra.join(", ")}]`,
    );
    process.exit(1);
  }
}
