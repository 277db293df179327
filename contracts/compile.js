#!/usr/bin/env node
// Compiles contracts/*.sol with the pinned npm solc (solcjs) and writes contracts/build/<Name>.json:
// a header naming the compiler, its settings and the sha256 of every source, then ABI and bytecode.
// Usage: node contracts/compile.js [--check]   (--check compares with the committed artifacts)
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const solc = require("solc");

const root = path.resolve(__dirname, "..");
const contractsDir = __dirname;
const buildDir = path.join(contractsDir, "build");
const SETTINGS = {
  optimizer: { enabled: true, runs: 20000 },
  viaIR: true,
  evmVersion: "cancun",
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences", "storageLayout"] } },
};

function findImport(importPath) {
  const candidate = path.join(root, "node_modules", importPath);
  if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  return { error: `not found: ${importPath}` };
}

const sources = {};
for (const file of fs.readdirSync(contractsDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: fs.readFileSync(path.join(contractsDir, file), "utf8") };
}
const input = { language: "Solidity", sources, settings: SETTINGS };
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
if (errors.length) process.exit(1);

const ozVersion = require(path.join(root, "node_modules/@openzeppelin/contracts/package.json")).version;
const sha = (s) => crypto.createHash("sha256").update(s).digest("hex");
const check = process.argv.includes("--check");
let stale = 0;
fs.mkdirSync(buildDir, { recursive: true });
for (const file of Object.keys(sources)) {
  for (const [name, c] of Object.entries(output.contracts[file])) {
    const artifact = {
      _generated: "by contracts/compile.js; do not edit, run `make contracts`",
      compiler: `solc ${solc.version()} (npm solc)`,
      openzeppelin: ozVersion,
      settings: { optimizer: SETTINGS.optimizer, viaIR: SETTINGS.viaIR, evmVersion: SETTINGS.evmVersion, metadata: SETTINGS.metadata },
      // slot and offset of each state variable: lets readers fetch claim state with one
      // storage read instead of an eth_call
      storage: Object.fromEntries((c.storageLayout?.storage || []).map((v) => [v.label, { slot: Number(v.slot), offset: v.offset, type: v.type }])),
      source: file,
      source_sha256: sha(sources[file].content),
      contractName: name,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      // [start, length] byte ranges of the runtime code that the constructor fills in
      immutableRanges: Object.values(c.evm.deployedBytecode.immutableReferences || {})
        .flat()
        .map((r) => [r.start, r.length])
        .sort((a, b) => a[0] - b[0]),
    };
    const text = JSON.stringify(artifact, null, 1) + "\n";
    const out = path.join(buildDir, `${name}.json`);
    if (check) {
      const committed = fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "";
      if (committed !== text) {
        process.stderr.write(`stale artifact: ${path.relative(root, out)}\n`);
        stale++;
      }
    } else {
      fs.writeFileSync(out, text);
      process.stdout.write(`wrote ${path.relative(root, out)} (${c.evm.deployedBytecode.object.length / 2} bytes runtime)\n`);
    }
  }
}
process.exit(stale ? 1 : 0);
