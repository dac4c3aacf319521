"use strict";
// An example storefront for glue-auth: plain JavaScript, no build step, no dependencies.
// It signs in through the OAuth 2.0 token endpoint (docs/wire-contract.md §3.8a), lists the
// customer's company users, switches to one by token exchange, reads that company, refreshes
// its tokens when an answer is 401, and signs out by revoking its refresh tokens. The page is
// served from its own origin, so every call is a cross-origin request (CORS, §1.7).
//
// The API's address comes from `?api=` on the page's URL; without it, the address
// `glue-auth demo` listens on.

const API = (new URLSearchParams(location.search).get("api") || "http://127.0.0.1:8080").replace(/\/+$/, "");
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const JSON_API = "application/vnd.api+json";
const STORAGE_KEY = "glue-auth-storefront";

const $ = (id) => document.getElementById(id);

// The session, kept in sessionStorage so that a reload keeps it (and closing the tab ends it):
// { customer: {access, refresh}, companyUser: {access, refresh, id} | null, refreshes }
let session = restore();

function restore() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
}

function persist() {
  if (session) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(STORAGE_KEY);
}

function log(line) {
  const box = $("log");
  box.textContent += `${line}\n`;
  box.scrollTop = box.scrollHeight;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const tokens = (answer) => ({ access: answer.access_token, refresh: answer.refresh_token });

// POST a form to /token or /revoke. The answer is OAuth JSON: the tokens, or
// {error, error_description} (all refusals are 400; 429 and 503 carry Retry-After).
async function oauth(path, fields) {
  const response = await fetch(API + path, { method: "POST", body: new URLSearchParams(fields) });
  const body = await response.json().catch(() => ({}));
  const grant = fields.grant_type ? ` grant_type=${fields.grant_type}` : "";
  log(`POST ${path}${grant} → ${response.status}${body.error ? ` ${body.error}` : ""}`);
  if (!response.ok) {
    throw new ApiError(response.status, body.error_description || `HTTP ${response.status}`);
  }
  return body;
}

// One refresh per refresh token at a time: a refresh token is single use, so two parallel
// 401s must not both spend it (the second would count as a reuse).
const refreshing = new Map();

function refresh(held) {
  const spent = held.refresh;
  let pending = refreshing.get(spent);
  if (!pending) {
    pending = oauth("/token", { grant_type: "refresh_token", refresh_token: spent })
      .then((answer) => {
        Object.assign(held, tokens(answer));
        session.refreshes += 1;
        persist();
        $("refresh-count").textContent = String(session.refreshes);
      })
      .catch((error) => {
        // The refresh token has expired or was revoked (a sign-out elsewhere, a reuse):
        // the session is over.
        if (error instanceof ApiError && error.status === 400) {
          session = null;
          persist();
          render();
          throw new ApiError(401, "Your session has ended: please sign in again.");
        }
        throw error;
      })
      .finally(() => refreshing.delete(spent));
    refreshing.set(spent, pending);
  }
  return pending;
}

// GET a JSON:API document with `held`'s access token; after a 401 (the access token has
// expired), refresh once and try again.
async function get(path, held) {
  const send = async () => {
    const response = await fetch(API + path, {
      headers: { Authorization: `Bearer ${held.access}`, Accept: JSON_API },
    });
    log(`GET ${path} → ${response.status}`);
    return response;
  };
  let response = await send();
  if (response.status === 401) {
    log("  the access token is no longer accepted: refreshing");
    await refresh(held);
    response = await send();
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.errors && body.errors[0];
    throw new ApiError(response.status, error ? `${error.detail} (${error.code})` : `HTTP ${response.status}`);
  }
  return body;
}

async function signIn(username, password) {
  const answer = await oauth("/token", { grant_type: "password", username, password });
  session = { customer: tokens(answer), companyUser: null, refreshes: 0 };
  persist();
  await showSession();
}

// Switch to one of the customer's company users: exchange the customer's access token for
// that company user's tokens. The answer to a subject token that has expired is the same
// invalid_grant as for a membership that cannot be used, so refresh once and try again.
async function switchTo(idCompanyUser) {
  const exchange = () =>
    oauth("/token", {
      grant_type: TOKEN_EXCHANGE,
      subject_token: session.customer.access,
      subject_token_type: ACCESS_TOKEN_TYPE,
      id_company_user: idCompanyUser,
    });
  let answer;
  try {
    answer = await exchange();
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 400) throw error;
    await refresh(session.customer);
    answer = await exchange();
  }
  const previous = session.companyUser;
  session.companyUser = { ...tokens(answer), id: idCompanyUser };
  persist();
  if (previous) await revoke(previous.refresh);
  await Promise.all([showMemberships(), showCompany()]);
}

function revoke(refreshToken) {
  return oauth("/revoke", { token: refreshToken, token_type_hint: "refresh_token" });
}

// Sign out: revoke every refresh token the page holds (the access tokens expire by
// themselves), then forget the session.
async function signOut() {
  const held = [session.companyUser, session.customer].filter(Boolean);
  try {
    await Promise.all(held.map((t) => revoke(t.refresh)));
  } finally {
    session = null;
    persist();
    render();
  }
}

async function showSession() {
  render();
  const customers = await get("/customers", session.customer);
  const customer = customers.data[0];
  $("customer-name").textContent = `${customer.attributes.firstName} ${customer.attributes.lastName}`;
  $("customer-reference").textContent = customer.id;
  await Promise.all([showMemberships(), session.companyUser ? showCompany() : null]);
  $("status").textContent = "Signed in.";
}

async function showMemberships() {
  const answer = await get("/company-users/mine?include=companies,company-business-units", session.customer);
  const included = new Map((answer.included || []).map((r) => [`${r.type}/${r.id}`, r.attributes]));
  const name = (user, type) => {
    const link = user.relationships && user.relationships[type] && user.relationships[type].data[0];
    const attributes = link && included.get(`${link.type}/${link.id}`);
    return attributes ? attributes.name : "";
  };
  const rows = $("memberships");
  rows.replaceChildren();
  for (const user of answer.data) {
    const row = rows.insertRow();
    row.dataset.companyUser = user.id;
    row.insertCell().textContent = name(user, "companies");
    row.insertCell().textContent = name(user, "company-business-units");
    row.insertCell().textContent = user.attributes.isDefault ? "default" : "";
    const action = row.insertCell();
    if (session.companyUser && session.companyUser.id === user.id) {
      row.className = "current";
      action.textContent = "current";
    } else {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Switch";
      button.addEventListener("click", () => run(() => switchTo(user.id)));
      action.append(button);
    }
  }
  if (!answer.data.length) rows.insertRow().insertCell().textContent = "No company accounts.";
}

async function showCompany() {
  const companies = await get("/companies/mine", session.companyUser);
  const company = companies.data[0];
  $("company-name").textContent = company.attributes.name;
  $("company-status").textContent = company.attributes.status;
  $("company-user-id").textContent = session.companyUser.id;
  $("company").hidden = false;
}

function render() {
  $("sign-in").hidden = Boolean(session);
  $("signed-in").hidden = !session;
  if (!session) {
    $("company").hidden = true;
    $("memberships").replaceChildren();
    $("status").textContent = "Signed out.";
  } else {
    $("refresh-count").textContent = String(session.refreshes);
  }
}

// Run an action of the page: show its error, if any, instead of losing it in the console.
async function run(action) {
  $("error").textContent = "";
  try {
    await action();
  } catch (error) {
    $("error").textContent = error.message;
  }
}

$("api").textContent = API;
$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  run(() => signIn($("username").value, $("password").value));
});
$("sign-out").addEventListener("click", () => run(signOut));
$("reload-company").addEventListener("click", () => run(showCompany));
render();
if (session) run(showSession);
