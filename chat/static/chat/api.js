// Calls to the REST API with the session cookie and Django's CSRF header.
import { config } from "./config.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || body?.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
}

/** `method` `path` (relative to /api/) with an optional JSON body; resolves to JSON. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  const response = await fetch(config.apiRoot + path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A list response as an array, whether it is `[...]` or `{"items": [...]}`. */
export function itemsOf(data) {
  if (Array.isArray(data)) return data;
  return data?.items ?? [];
}
