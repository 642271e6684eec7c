// Live updates: the node's Server-Sent Events stream (`GET /v1/events`).
// EventSource cannot send headers, so the token goes in `?token=`. The browser
// reconnects by itself after a dropped connection; when the node refuses the
// stream outright (a 401, the node restarting), we retry with a growing delay
// and ask `onRefused` whether the token is the reason.

import { withToken } from "./auth.js";

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;

/**
 * Open the stream. Handlers: `onReady()` (connected: refetch what may have been
 * missed), `onChange(summary)`, `onDevice({device, connected})`, `onResync()`,
 * `onState("live" | "connecting" | "offline")`, `onRefused()` (async; return
 * false to stop retrying). Returns `{ close() }`.
 */
export function connectLive(handlers) {
  let source = null;
  let delay = MIN_DELAY_MS;
  let timer = null;
  let closed = false;

  const parse = (e) => {
    try {
      return JSON.parse(e.data);
    } catch {
      return null;
    }
  };

  function open() {
    if (closed) return;
    handlers.onState?.("connecting");
    source = new EventSource(withToken("/v1/events"));
    source.addEventListener("ready", () => {
      delay = MIN_DELAY_MS;
      handlers.onState?.("live");
      handlers.onReady?.();
    });
    source.addEventListener("change", (e) => {
      const s = parse(e);
      if (s) handlers.onChange?.(s);
    });
    source.addEventListener("device", (e) => {
      const d = parse(e);
      if (d) handlers.onDevice?.(d);
    });
    source.addEventListener("resync", () => handlers.onResync?.());
    source.onerror = async () => {
      if (closed) return;
      if (source.readyState === EventSource.CONNECTING) {
        // the browser retries by itself
        handlers.onState?.("connecting");
        return;
      }
      // CLOSED: the node refused the stream; find out why, then retry
      handlers.onState?.("offline");
      source.close();
      const again = (await handlers.onRefused?.()) !== false;
      if (!again || closed) return;
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    };
  }

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      source?.close();
    },
  };
}
