// Builds app.js into a component: node build.mjs OUT.wasm (with
// @bytecodealliance/componentize-js installed: npm install --ignore-scripts, package.json).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { componentize } from "@bytecodealliance/componentize-js";

// FERRY_JS_EXAMPLE: this directory, when the script runs from a copy beside node_modules.
const here = process.env.FERRY_JS_EXAMPLE ?? dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, "build/monthly_activity.wasm");
const wit = join(dirname(out), "wit");
mkdirSync(wit, { recursive: true });
writeFileSync(
  join(wit, "ferry.wit"),
  readFileSync(join(here, "../../wit/ferry.wit"), "utf8") + readFileSync(join(here, "../plugin-python-monthly/wit/computing.wit"), "utf8"),
);
const { component } = await componentize({
  sourcePath: join(here, "app.js"),
  witPath: wit,
  worldName: "computing-plugin",
  // No wasi:http, stdio, clocks or random beyond what the engine itself needs.
  disableFeatures: ["http", "fetch-event", "stdio", "random", "clocks"],
});
writeFileSync(out, component);
console.log(`wrote ${out} (${component.length} bytes)`);
