// The one place that knows how the page reaches the backend: Tauri commands inside the
// app, the admin HTTP API (with its token) in a browser. Everything else calls `api`,
// and hears what changes through `follow`.

const tauri = window.__TAURI__?.core;
const tauriEvents = window.__TAURI__?.event;

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

/**
 * Calls `onEvent` with each of the core's events as it happens (quota, provider health,
 * routes, waiting requests, mode, config): pushed by the app, or read from
 * `GET /api/events` (server-sent events) in a browser, reconnecting when it drops.
 */
export function follow(onEvent) {
  if (tauriEvents) {
    tauriEvents.listen("core-event", (e) => onEvent(e.payload));
    return;
  }
  let delay = 1000;
  const connect = async () => {
    try {
      const response = await fetch("/api/events", { headers: { Authorization: `Bearer ${adminToken}` } });
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      delay = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let pending = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += value;
        let end;
        while ((end = pending.indexOf("\n\n")) >= 0) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          if (data) onEvent(JSON.parse(data));
        }
      }
    } catch {
      // The proxy restarted or the network blinked: try again, a little later each time.
    }
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 10000);
  };
  connect();
}
