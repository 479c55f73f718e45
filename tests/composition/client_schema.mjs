// Read a live introspection result (stdin: the result's "data") back the way a client
// generator does, with graphql-js 16.0.0, the first of the line: every graphql-js 16
// parses what it parses. Prints one JSON object: {"ok": bool, "errors": [message]}.
// Exit status: 0 when everything read back, 1 when something failed, 2 on bad usage.
//
// buildClientSchema takes any directive location; a tool that prints the directive
// definitions (GraphQL Code Generator's schema-ast with introspection types) and parses
// them again fails on one graphql-js does not know, so this does the same.
import { readFileSync } from "node:fs";
import { buildClientSchema, buildSchema, parse, printSchema, validateSchema } from "graphql-16.0";

const text = readFileSync(0, "utf8");
if (!text.trim()) {
  console.error("usage: node client_schema.mjs < introspection-data.json");
  process.exit(2);
}
const errors = [];
const attempt = (what, step) => {
  try {
    step();
  } catch (error) {
    errors.push(`${what}: ${error.message}`);
  }
};
let schema = null;
attempt("buildClientSchema", () => {
  schema = buildClientSchema(JSON.parse(text));
});
if (schema) {
  for (const error of validateSchema(schema)) errors.push(`validateSchema: ${error.message}`);
  attempt("printSchema, then buildSchema", () => buildSchema(printSchema(schema)));
  for (const directive of schema.getDirectives()) {
    const repeatable = directive.isRepeatable ? " repeatable" : "";
    const definition = `directive @${directive.name}${repeatable} on ${directive.locations.join(" | ")}`;
    attempt(`parse(${JSON.stringify(definition)})`, () => parse(definition));
  }
}
console.log(JSON.stringify({ ok: errors.length === 0, errors }));
process.exit(errors.length === 0 ? 0 : 1);
