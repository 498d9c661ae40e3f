// Builds the web client into build/ (index.html + assets/), offline, from the locked packages.
// `make web` runs it when build/.stamp is older than a source, the lockfile or this file.
// SWITCHBOARD_API_BASE (e.g. https://myapp.azurewebsites.net) bakes in another API origin;
// empty (the default) means the page's own origin, as under `make run`.
// SWITCHBOARD_ENTRA_CLIENT_ID + SWITCHBOARD_API_SCOPE (+ SWITCHBOARD_ENTRA_AUTHORITY) make a
// production build: sign-in with Microsoft Entra ID through MSAL, no dev sign-in.
// SWITCHBOARD_WEB_OUT builds elsewhere than build/ (the browser tests build a second client).
import { build } from "esbuild";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";

const out = process.env.SWITCHBOARD_WEB_OUT
  ? process.env.SWITCHBOARD_WEB_OUT.replace(/\/?$/, "/")
  : new URL("./build/", import.meta.url).pathname;
const env = (name) => JSON.stringify(process.env[name] ?? "");
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
    "process.env.SWITCHBOARD_API_BASE": env("SWITCHBOARD_API_BASE"),
    "process.env.SWITCHBOARD_ENTRA_CLIENT_ID": env("SWITCHBOARD_ENTRA_CLIENT_ID"),
    "process.env.SWITCHBOARD_ENTRA_AUTHORITY": env("SWITCHBOARD_ENTRA_AUTHORITY"),
    "process.env.SWITCHBOARD_API_SCOPE": env("SWITCHBOARD_API_SCOPE"),
  },
});
await copyFile("index.html", `${out}index.html`);
await writeFile(`${out}meta.json`, JSON.stringify(result.metafile));
await writeFile(`${out}.stamp`, new Date().toISOString() + "\n");
