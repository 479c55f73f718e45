// The API as the page uses it: the token, one GraphQL request per call, and the names of
// the operations the server embedded in the page (runql/web/ui/operations/*.graphql).

export const OPERATIONS = JSON.parse(document.getElementById("runql-operations").textContent);
const KEY = "runql.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/** Run the operation `name` (a key of OPERATIONS); its data, or an ApiError. */
export async function gql(name, variables = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json",
        Authorization: `Bearer ${token.get()}`,
      },
      body: JSON.stringify({ query: OPERATIONS[name], operationName: name, variables }),
    });
  } catch (error) {
    throw new ApiError(`The server cannot be reached (${error.message}).`, "NETWORK");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered HTTP ${response.status}.`, "HTTP");
  }
  if (body.errors?.length) {
    const [first] = body.errors;
    throw new ApiError(first.message, first.extensions?.code);
  }
  return body.data;
}
