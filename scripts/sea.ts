/**
 * Builds `bucketsync` as one executable file with Node's single executable applications (SEA):
 * the CLI and its dependencies bundled by esbuild into one CommonJS script (SEA on Node 20 runs
 * one script and can require only Node's built-in modules), made a blob with
 * `node --experimental-sea-config`, and injected with postject into a copy of this Node binary.
 *
 * Usage: npm run sea   (writes dist/sea/bucketsync; runs on Linux machines like this one)
 *        node dist/scripts/sea.js [OUT_DIR]
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const out = process.argv[2] ?? join(repo, "dist", "sea");
mkdirSync(out, { recursive: true });
const version = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string }).version;

// Two places load a file by a path computed at run time (createRequire): the package's version and
// undici's agent (loaded without undici's 110-module entry). A bundle holds no files, so both
// become static requires esbuild can follow.
const staticRequires: Plugin = {
  name: "static-requires",
  setup(b) {
    b.onLoad({ filter: /dist[\\/]src[\\/](cli[\\/]main|stores[\\/]s3[\\/]lean-client)\.js$/ }, (args) => {
      const text = readFileSync(args.path, "utf8")
        .replace(
          /createRequire\(import\.meta\.url\)\("\.\.\/\.\.\/\.\.\/package\.json"\)/,
          `({ version: "${version}" })`,
        )
        .replace(
          /createRequire\(import\.meta\.url\)\("undici\/lib\/dispatcher\/agent\.js"\)/,
          `require("undici/lib/dispatcher/agent.js")`,
        );
      return { contents: text, loader: "js" };
    });
  },
};

await build({
  entryPoints: [join(repo, "dist", "src", "cli", "bin.js")],
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  outfile: join(out, "bucketsync.cjs"),
  plugins: [staticRequires],
  logLevel: "warning",
  // The bundle's own import.meta is never read after the plugin's rewrites.
  define: { "import.meta.url": "undefined" },
});

writeFileSync(
  join(out, "sea-config.json"),
  JSON.stringify({
    main: join(out, "bucketsync.cjs"),
    output: join(out, "bucketsync.blob"),
    disableExperimentalSEAWarning: true,
    useCodeCache: true,
  }),
);
execFileSync(process.execPath, ["--experimental-sea-config", join(out, "sea-config.json")], { stdio: "inherit" });
const exe = join(out, "bucketsync");
copyFileSync(process.execPath, exe);
chmodSync(exe, 0o755);
execFileSync(
  process.execPath,
  [
    join(repo, "node_modules", "postject", "dist", "cli.js"),
    exe,
    "NODE_SEA_BLOB",
    join(out, "bucketsync.blob"),
    "--sentinel-fuse",
    "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2",
  ],
  { stdio: "inherit" },
);
console.log(`wrote ${exe}`);
