// Apollo Client's PersistedQueryLink against a running runql: `node apq.mjs URL TOKEN GET|POST`.
// Runs one query three times (network-only) and prints, as one JSON line, the data each
// call got and every HTTP request the link made (method, whether it carried the query
// text and the persistedQuery extension), for tests/http/test_apollo_link.py to check.
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [url, token, method] = process.argv.slice(2);
const requests = [];

async function recordingFetch(input, init) {
  const target = new URL(String(input));
  const body = init.body ? JSON.parse(init.body) : Object.fromEntries(target.searchParams);
  const extensions =
    typeof body.extensions === "string" ? JSON.parse(body.extensions) : body.extensions;
  const response = await fetch(input, init);
  requests.push({
    method: init.method ?? "GET",
    query: typeof body.query === "string",
    hash: extensions?.persistedQuery?.sha256Hash ?? null,
    status: response.status,
  });
  return response;
}

const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: method === "GET",
  }).concat(
    new HttpLink({ uri: url, headers: { Authorization: `Bearer ${token}` }, fetch: recordingFetch }),
  ),
});

const ME = gql`
  query Me {
    me {
      name
    }
  }
`;
const results = [];
for (let i = 0; i < 3; i++) {
  const { data, error } = await client.query({ query: ME, fetchPolicy: "network-only" });
  results.push(error ? { error: String(error) } : data);
}
console.log(JSON.stringify({ results, requests }));
