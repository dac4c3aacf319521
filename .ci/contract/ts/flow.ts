// The company-account flow through openapi-fetch, with types that openapi-typescript
// generated from the committed OpenAPI document (./schema.d.ts, made by .ci/contract/run).
// tsc checks every request and every field read here against those types, so a change to
// the document that breaks a TypeScript client fails here. Only the generated types and
// openapi-fetch talk to the service; the company-user token is verified with WebCrypto
// against the published JWKS.
//
// Usage: node build/flow.js BASE_URL

import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];

const base = process.argv[2];
if (!base) throw new Error("usage: node build/flow.js BASE_URL");

const SONIA = "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac";
const ANNE_ACME = "72778771-2020-574f-bbaf-05da5889e79e";
const JSON_API = "application/vnd.api+json";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

// JSON:API bodies go out as application/vnd.api+json; the OAuth forms as
// application/x-www-form-urlencoded.
const client = createClient<paths>({ baseUrl: base, headers: { "Content-Type": JSON_API, Accept: JSON_API } });
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const form = {
  bodySerializer: (body: Record<string, string | undefined>) => {
    const fields = new URLSearchParams();
    for (const [name, value] of Object.entries(body)) if (value !== undefined) fields.set(name, value);
    return fields;
  },
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
};

const decode = (part: string): unknown => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));

// Verify an ES256 JWT with the key of its `kid` from the JWKS; return its claims.
type Jwk = webcrypto.JsonWebKey & { kid?: string };

async function verify(jwt: string, jwks: { keys: Jwk[] }): Promise<Record<string, unknown>> {
  const [header, payload, signature] = jwt.split(".");
  assert.ok(header && payload && signature, "three parts");
  const { kid, alg } = decode(header) as { kid: string; alg: string };
  assert.equal(alg, "ES256");
  const jwk = jwks.keys.find((k) => k.kid === kid);
  assert.ok(jwk, `the JWKS has the key ${kid}`);
  const key = await webcrypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  const valid = await webcrypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    Buffer.from(signature, "base64url"),
    new TextEncoder().encode(`${header}.${payload}`),
  );
  assert.ok(valid, "the signature verifies with the published key");
  return decode(payload) as Record<string, unknown>;
}

// 1. The JSON:API login, the customer's company users, and the company-user token.
const login = await client.POST("/access-tokens", {
  body: { data: { type: "access-tokens", attributes: { username: "sonia@acme.com", password: "change123" } } },
});
assert.equal(login.response.status, 201);
assert.ok(login.data, "a 201 document");
const customer: Schemas["AccessTokensAttributes"] = login.data.data.attributes;
assert.equal(customer.idCompanyUser, SONIA);

const mine = await client.GET("/company-users/mine", { headers: bearer(customer.accessToken) });
assert.equal(mine.response.status, 200);
assert.deepEqual(mine.data?.data.map((user) => user.id), [SONIA]);

const switched = await client.POST("/company-user-access-tokens", {
  headers: bearer(customer.accessToken),
  body: { data: { type: "company-user-access-tokens", attributes: { idCompanyUser: SONIA } } },
});
assert.equal(switched.response.status, 201);
assert.ok(switched.data);
const companyUser = switched.data.data.attributes;

const jwks = await client.GET("/.well-known/jwks.json");
assert.equal(jwks.response.status, 200);
assert.ok(jwks.data);
const claims = await verify(companyUser.accessToken, jwks.data as unknown as { keys: Jwk[] });
assert.deepEqual(claims.scopes, ["company_user"]);
assert.equal((JSON.parse(String(claims.sub)) as { id_company_user: string }).id_company_user, SONIA);
assert.equal(claims.aud, "frontend");
assert.ok(Number(claims.exp) > Date.now() / 1000, "not expired");

const companies = await client.GET("/companies/mine", { headers: bearer(companyUser.accessToken) });
assert.equal(companies.response.status, 200);
assert.deepEqual(companies.data?.data.map((company) => company.attributes.name), ["Acme Corporation"]);

const refreshed = await client.POST("/refresh-tokens", {
  body: { data: { type: "refresh-tokens", attributes: { refreshToken: customer.refreshToken } } },
});
assert.equal(refreshed.response.status, 201);
assert.notEqual(refreshed.data?.data.attributes.refreshToken, customer.refreshToken);

// 2. The OAuth 2.0 endpoints: metadata, the password grant, the token exchange to a
// company user, the refresh grant, a refusal, and revocation.
const metadata = await client.GET("/.well-known/oauth-authorization-server");
assert.equal(metadata.response.status, 200);
assert.ok(metadata.data);
const tokenEndpoint = new URL(metadata.data.token_endpoint);
assert.equal(tokenEndpoint.pathname, "/token");
assert.ok(metadata.data.grant_types_supported.includes(TOKEN_EXCHANGE));

const password = await client.POST("/token", {
  ...form,
  body: { grant_type: "password", username: "anne.boleyn@acme.com", password: "change123" },
});
assert.equal(password.response.status, 200);
assert.equal(password.response.headers.get("Cache-Control"), "no-store");
assert.ok(password.data);
const anne: Schemas["TokenResponse"] = password.data;
assert.equal(anne.token_type, "Bearer");

const exchanged = await client.POST("/token", {
  ...form,
  body: {
    grant_type: TOKEN_EXCHANGE,
    subject_token: anne.access_token,
    subject_token_type: ACCESS_TOKEN_TYPE,
    id_company_user: ANNE_ACME,
  },
});
assert.equal(exchanged.response.status, 200);
assert.ok(exchanged.data);
assert.equal(exchanged.data.issued_token_type, ACCESS_TOKEN_TYPE);
const acme = await client.GET("/companies/mine", { headers: bearer(exchanged.data.access_token) });
assert.deepEqual(acme.data?.data.map((company) => company.attributes.name), ["Acme Corporation"]);

const rotated = await client.POST("/token", {
  ...form,
  body: { grant_type: "refresh_token", refresh_token: exchanged.data.refresh_token },
});
assert.equal(rotated.response.status, 200);
assert.ok(rotated.data);
assert.notEqual(rotated.data.refresh_token, exchanged.data.refresh_token);

const wrong = await client.POST("/token", {
  ...form,
  body: { grant_type: "password", username: "anne.boleyn@acme.com", password: "not her password" },
});
assert.equal(wrong.response.status, 400);
const refusal: Schemas["OAuthError"] | undefined = wrong.error;
assert.deepEqual(refusal, { error: "invalid_grant", error_description: "The user credentials were incorrect." });

const revoked = await client.POST("/revoke", {
  ...form,
  body: { token: rotated.data.refresh_token, token_type_hint: "refresh_token" },
});
assert.equal(revoked.response.status, 200);
const afterRevoke = await client.POST("/token", {
  ...form,
  body: { grant_type: "refresh_token", refresh_token: rotated.data.refresh_token },
});
assert.equal(afterRevoke.response.status, 400);
assert.equal(afterRevoke.error?.error, "invalid_request");

// 3. Sign-out everywhere, and a forged token.
const ended = await client.DELETE("/refresh-tokens/mine", { headers: bearer(companyUser.accessToken) });
assert.equal(ended.response.status, 204);

const forged = await client.GET("/customers", { headers: bearer("not-a-token") });
assert.equal(forged.response.status, 401);
const error = forged.error?.errors[0];
assert.deepEqual([error?.code, error?.status, error?.detail], ["001", 401, "Invalid access token."]);

console.log("openapi-fetch (TypeScript, openapi-typescript types): login, company users, company-user token");
console.log("  (verified with WebCrypto and the JWKS), company, refresh; /token password, exchange, refresh,");
console.log("  invalid_grant, revoke; metadata; sign-out; 401/001: ok");
