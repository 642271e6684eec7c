// Live updates: the node's Server-Sent Events stream (`GET /v1/events`), read
// with `fetch` so that the token goes in the `Authorization` header, never in
// the URL (`EventSource` cannot send headers). A dropped stream is opened
// again with a growing delay; when the node refuses it (a 401, the node
// restarting), we ask `onRefused` whether the token is the reason.

import { getToken } from "./auth.js";

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;

/**
 * Split Server-Sent Events text into events: returns the complete events in
 * `buffer` as `{event, data}` and the incomplete rest.
 */
export function parseEvents(buffer) {
  const events = [];
  const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
  const rest = blocks.pop();
  for (const block of blocks) {
    let event = "message";
    const data = [];
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line === "" || line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length > 0) events.push({ event, data: data.join("\n") });
  }
  return { events, rest };
}

/**
 * Open the stream. Handlers: `onReady()` (connected: refetch what may have been
 * missed), `onChange(summary)`, `onDevice({device, connected})`, `onResync()`,
 * `onState("live" | "connecting" | "offline")`, `onRefused()` (async; return
 * false to stop retrying). Returns `{ close() }`.
 */
export function connectLive(handlers) {
  let controller = null;
  let delay = MIN_DELAY_MS;
  let timer = null;
  let closed = false;

  const parse = (data) => {
    try {
      return JSON.parse(data);
    } catch {
      return null;
    }
  };

  function dispatch({ event, data }) {
    if (event === "ready") {
      delay = MIN_DELAY_MS;
      handlers.onState?.("live");
      handlers.onReady?.();
    } else if (event === "change") {
      const s = parse(data);
      if (s) handlers.onChange?.(s);
    } else if (event === "device") {
      const d = parse(data);
      if (d) handlers.onDevice?.(d);
    } else if (event === "resync") {
      handlers.onResync?.();
    }
  }

  function again() {
    if (closed) return;
    timer = setTimeout(open, delay);
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }

  async function open() {
    if (closed) return;
    handlers.onState?.("connecting");
    controller = new AbortController();
    const headers = { Accept: "text/event-stream" };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch("/v1/events", { headers, cache: "no-store", signal: controller.signal });
    } catch {
      return again(); // the node cannot be reached: try again
    }
    if (!res.ok || !res.body) {
      // the node refused the stream; find out why, then retry
      handlers.onState?.("offline");
      const retry = (await handlers.onRefused?.()) !== false;
      if (retry) again();
      return;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const { events, rest } = parseEvents(buffer);
        buffer = rest;
        for (const e of events) dispatch(e);
      }
    } catch {
      // dropped (or closed by us)
    }
    if (!closed) again();
  }

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      controller?.abort();
    },
  };
}
