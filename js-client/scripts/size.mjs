// Size of the client as users get it from a bundler: esbuild --bundle --minify (ESM), then gzip -9.
// The official socket.io-client (its ESM entry with all its dependencies) is measured the same way.
// Exits non-zero if ours is over the budget.
//
//   node scripts/size.mjs        (from js-client/)

import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BUDGET = 5120;

async function measure(stdin) {
    const out = await build({
        stdin: { contents: stdin, resolveDir: HERE, loader: "js" },
        bundle: true,
        minify: true,
        format: "esm",
        platform: "browser",
        write: false,
        logLevel: "error",
    });
    const code = out.outputFiles[0].contents;
    return { min: code.length, gz: gzipSync(code, { level: 9 }).length };
}

const all = 'export * from "X"; export { default } from "X";';
const ours = await measure(all.replaceAll("X", "./client.js"));
const official = await measure(all.replaceAll("X", "socket.io-client"));
console.log(`ours:     ${ours.gz} bytes (minified ${ours.min}, gzip -9), budget ${BUDGET}`);
console.log(`official: ${official.gz} bytes (minified ${official.min}, gzip -9), socket.io-client ESM bundle`);
console.log(`ratio:    ours is ${(ours.gz / official.gz).toFixed(2)} of official (${(official.gz / ours.gz).toFixed(1)}x smaller)`);
if (ours.gz > BUDGET) {
    console.error(`size: FAILED, ${ours.gz} > ${BUDGET} bytes`);
    process.exit(1);
}
