/**
 * The layer table of docs/architecture.md, enforced: a module may import from its own layer and
 * the layers below it, never from a layer above, and no import cycle anywhere.
 *
 *   core -> options (the option table) -> integrity -> stores -> planner -> executor ->
 *   api (sync, acl, versions, config, distributed) -> cli
 */
const layers = {
  core: "^src/core/",
  options: "^src/options/",
  integrity: "^src/integrity/",
  stores: "^src/stores/",
  planner: "^src/planner/",
  executor: "^src/executor/",
  api: "^src/(sync|acl|versions|index)\\.ts$|^src/(config|distributed|watch)/",
  cli: "^src/cli/",
};
const order = Object.keys(layers);
const above = (layer) =>
  order
    .slice(order.indexOf(layer) + 1)
    .map((l) => layers[l])
    .join("|");

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "Import cycles make load order and layering unclear.",
      from: {},
      to: { circular: true },
    },
    ...order.slice(0, -1).map((layer) => ({
      name: `${layer}-imports-upward`,
      severity: "error",
      comment: `${layer} must not import from a layer above it (see docs/architecture.md).`,
      from: { path: layers[layer] },
      to: { path: above(layer) },
    })),
    {
      name: "tests-and-benches-not-imported-by-src",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|bench|scripts)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^dist/" },
  },
};
