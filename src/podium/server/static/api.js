// Talking to the server: JSON over fetch (same origin, the session cookie) and live streams.
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function parse(r) {
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new ApiError(r.status, (body && body.error) || `HTTP ${r.status}`);
  return body;
}

export async function get(path, params) {
  const q = params ? "?" + new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined)) : "";
  return parse(await fetch(path + q, { credentials: "same-origin", headers: { accept: "application/json" } }));
}

export async function post(path, body) {
  return parse(await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body || {}),
  }));
}

// An EventSource that reports its state; the browser reconnects by itself and sends
// Last-Event-ID, so the server resumes the stream after the last event we received.
export function follow(url, event, onData, onState) {
  const es = new EventSource(url);
  es.addEventListener(event, (m) => { try { onData(JSON.parse(m.data)); } catch (e) { console.warn(e); } });
  es.onopen = () => onState && onState("live");
  es.onerror = () => onState && onState(es.readyState === 2 ? "closed" : "reconnecting");
  return es;
}
