// Builds the web client into build/ (index.html + assets/), offline, from the locked packages.
// `make web` runs it when build/.stamp is older than a source, the lockfile or this file.
// SWITCHBOARD_API_BASE (e.g. https://myapp.azurewebsites.net) bakes in another API origin;
// empty (the default) means the page's own origin, as under `make run`.
import { build } from "esbuild";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";

const out = new URL("./build/", import.meta.url).pathname;
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const result = await build({
  entryPoints: ["src/main.tsx"],
  outdir: `${out}assets`,
  bundle: true,
  // The shell loads first; the ACS UI Library (composites, Calling and Chat SDKs) is a second
  // chunk fetched when a call or chat first opens.
  splitting: true,
  format: "esm",
  minify: true,
  sourcemap: false,
  target: ["chrome110", "firefox110", "safari16"],
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  define: {
    "process.env.NODE_ENV": '"production"',
    "process.env.SWITCHBOARD_API_BASE": JSON.stringify(process.env.SWITCHBOARD_API_BASE ?? ""),
  },
});
await copyFile("index.html", `${out}index.html`);
await writeFile(`${out}meta.json`, JSON.stringify(result.metafile));
await writeFile(`${out}.stamp`, new Date().toISOString() + "\n");
