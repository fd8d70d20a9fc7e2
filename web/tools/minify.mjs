// Minifies the browser library's loader template with terser, for
// `cargo xtask build-client`:
//
//   node web/tools/minify.mjs <wrapped input.js> <output.js> <placeholder>
//
// The input is `(function(){` + wasm-bindgen's glue + `;` + web/loader.js +
// `})();`. The output must stay a template the bundler can fill in, and
// must not touch the page's globals, so it is checked before it is written:
// - the placeholder is a free global read exactly once, never renamed;
// - the top level holds one statement and declares nothing;
// - no code assigns to an undeclared (global) name.
// Any failure exits non-zero with the reason.

import { readFileSync, writeFileSync } from "node:fs";
import { minify } from "terser";

const [input, output, placeholder] = process.argv.slice(2);
if (!input || !output || !placeholder) {
  console.error("usage: node minify.mjs <input.js> <output.js> <placeholder>");
  process.exit(2);
}

const fail = (why) => {
  console.error(`minify: ${why}`);
  process.exit(1);
};

const source = readFileSync(input, "utf8");
const result = await minify(source, {
  ecma: 2020,
  module: false,
  toplevel: false,
  compress: { passes: 3, ecma: 2020 },
  mangle: true,
  format: { comments: false, ecma: 2020 },
});
const code = result.code;

// Parse what terser wrote, with terser's own parser, to check its scopes.
const parsed = await minify(code, {
  compress: false,
  mangle: false,
  module: false,
  format: { ast: true, code: false },
});
const ast = parsed.ast;
ast.figure_out_scope({});

if (code.split(placeholder).length !== 2) {
  fail(`${placeholder} must appear exactly once in the output`);
}
if (!ast.globals.has(placeholder)) {
  fail(`${placeholder} is no longer a free global reference`);
}
if (ast.body.length !== 1) {
  fail(`the top level must be one statement (the wrapper), found ${ast.body.length}`);
}
const declared = [...ast.variables.keys()];
if (declared.length) {
  fail(`names leak to the page's global scope: ${declared.join(", ")}`);
}
// Assignments to undeclared names create globals in sloppy mode.
const leaks = new Set();
const isGlobalRef = (node) =>
  node && node.TYPE === "SymbolRef" && node.definition() && node.definition().undeclared;
ast.walk({
  _visit(node, descend) {
    if ((node.TYPE === "Assign" || node.TYPE === "DefaultAssign") && isGlobalRef(node.left)) {
      leaks.add(node.left.name);
    }
    if ((node.TYPE === "UnaryPrefix" || node.TYPE === "UnaryPostfix") &&
        (node.operator === "++" || node.operator === "--") && isGlobalRef(node.expression)) {
      leaks.add(node.expression.name);
    }
    if (descend) descend.call(node);
    return undefined;
  },
});
if (leaks.size) {
  fail(`code assigns to undeclared globals: ${[...leaks].join(", ")}`);
}

writeFileSync(output, code + "\n");
