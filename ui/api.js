// The one place that knows how the page reaches the backend: Tauri commands inside the
// app, the admin HTTP API (with its token) in a browser. Everything else calls `api`.

const tauri = window.__TAURI__?.core;

function token() {
  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl) {
    sessionStorage.setItem("pai-token", fromUrl);
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("pai-token") || "";
}

const adminToken = tauri ? "" : token();

export const hasAccess = () => Boolean(tauri || adminToken);

/** Calls the backend; resolves to {status, body}. */
export async function api(method, path, body) {
  if (tauri) {
    return tauri.invoke("admin", { method, path, body: body === undefined ? null : body });
  }
  const response = await fetch(path, {
    method,
    headers: {
      Authorization: `Bearer ${adminToken}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { text }; }
  return { status: response.status, body: parsed };
}

/** Start at login: only the tray app has it (`null` in a browser). */
export async function autostart(enable) {
  if (!tauri) return null;
  return tauri.invoke("autostart", { enable: enable === undefined ? null : enable });
}
