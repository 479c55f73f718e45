// Compose a subgraph SDL (read from stdin) into a supergraph with Apollo's composition
// library, as a gateway or router would. Prints one JSON object:
//   {"ok": bool, "errors": [{code, message}], "hints": [{code, message}]}
// Exit status: 0 when composition succeeded, 1 when it failed, 2 on bad usage.
import { readFileSync } from "node:fs";
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";

const name = process.argv[2] || "runql";
const sdl = readFileSync(0, "utf8");
if (!sdl.trim()) {
  console.error("usage: node compose.mjs [subgraph-name] < schema.graphql");
  process.exit(2);
}

const result = composeServices([
  { name, url: "http://runql.invalid/graphql", typeDefs: parse(sdl) },
]);
const describe = (items) =>
  (items || []).map((item) => ({
    code: item.extensions?.code ?? item.definition?.code ?? null,
    message: item.message ?? item.toString(),
  }));
const errors = describe(result.errors);
const hints = describe(result.hints);
console.log(JSON.stringify({ ok: errors.length === 0, errors, hints }));
process.exit(errors.length === 0 ? 0 : 1);
