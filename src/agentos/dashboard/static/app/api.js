// The REST API, as the CLI uses it: every read and every action goes through
// /api/v1 with the signed-in user's token (kept in localStorage so a reload, or a
// shared link opened in another tab, stays signed in; sign-out clears it).

const KEY = "agentos_token";

export const token = {
  get: () => localStorage.getItem(KEY),
  set: (value) => localStorage.setItem(KEY, value),
  clear: () => localStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// listeners told when the server no longer accepts our credential (401)
const signedOut = [];
export function onSignedOut(fn) { signedOut.push(fn); }

export function url(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) params.append(key, String(one));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

// Fill a route pattern ("/api/v1/tasks/{task_id}/retry") with its parameters.
export function route(pattern, params) {
  return pattern.replace(/\{(\w+)(:path)?\}/g, (_, name) => {
    if (params[name] === undefined) throw new Error(`route ${pattern} needs ${name}`);
    return encodeURIComponent(params[name]);
  });
}

export async function call(method, path, { query, body, text = false, headers = {} } = {}) {
  const sent = { Accept: text ? "*/*" : "application/json", ...headers };
  const kept = token.get();
  if (kept) sent.Authorization = `Bearer ${kept}`;
  let payload;
  if (body !== undefined) {
    if (typeof body === "string") {
      payload = body;
    } else {
      sent["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
  }
  const response = await fetch(url(path, query), { method, headers: sent, body: payload,
                                                    credentials: "same-origin" });
  if (response.status === 204) return null;
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    const error = answer.error ?? {};
    const failure = new ApiError(response.status, error.code ?? "http_error",
                                 error.message ?? `${response.status} ${response.statusText}`,
                                 error.details ?? {});
    if (response.status === 401) {
      token.clear();
      for (const fn of signedOut) fn(failure);
    }
    throw failure;
  }
  return text ? response.text() : response.json();
}

export const get = (path, query, options = {}) => call("GET", path, { ...options, query });
export const post = (path, body, options = {}) => call("POST", path, { ...options, body });
export const patch = (path, body) => call("PATCH", path, { body });
export const put = (path, body, options = {}) => call("PUT", path, { ...options, body });
export const del = (path) => call("DELETE", path);
