#!/usr/bin/env node
// A minimal JavaScript automerge-repo sync server: an unmodified `Repo` with
// the `WebSocketServerAdapter` (a.k.a. NodeWSServerAdapter) of
// @automerge/automerge-repo-network-websocket, no storage (documents live in
// memory until the process ends), no auth, no policies.
//
// It mirrors the permitsync relay's process contract so the same harness and
// benchmarks can drive either:
//   node js-relay.mjs [--host 127.0.0.1] [--port 0]
// prints `listening on http://HOST:PORT` on stdout once bound, serves the
// WebSocket sync endpoint at `ws://HOST:PORT/v1/sync` (a `?token=` is accepted
// and ignored) and `GET /healthz`, and stops on SIGINT/SIGTERM.
// Set DEBUG=automerge-repo:* for the library's own logging.

import http from "node:http";
import { parseArgs } from "node:util";

import { Repo } from "@automerge/automerge-repo";
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { WebSocketServer } from "ws";

const USAGE = "usage: node js-relay.mjs [--host 127.0.0.1] [--port 0]";

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: "0" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`js-relay: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`js-relay: bad --port ${values.port}\n${USAGE}`);
    process.exit(2);
  }
  return { host: values.host, port };
}

const SYNC_PATHS = new Set(["/v1/sync", "/"]);

function main() {
  const { host, port } = parseOptions(process.argv.slice(2));

  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, "http://localhost");
    if (req.method === "GET" && pathname === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: "ok", server: "js-relay" }));
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: "not_found", detail: `${req.method} ${pathname}` }));
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    const { pathname } = new URL(req.url, "http://localhost");
    if (!SYNC_PATHS.has(pathname)) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
  });

  // As the reference sync server does: answer requests for any document, but
  // do not announce documents to peers that did not ask for them.
  const repo = new Repo({
    network: [new WebSocketServerAdapter(wss)],
    peerId: `js-relay-${process.pid}`,
    sharePolicy: async () => false,
  });

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.error(`js-relay: ${signal}, stopping`);
    const force = setTimeout(() => process.exit(0), 2_000);
    force.unref();
    try {
      await repo.shutdown();
    } catch {
      // best effort
    }
    for (const client of wss.clients) client.terminate();
    server.close(() => process.exit(0));
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));

  server.on("error", (e) => {
    console.error(`js-relay: ${e.message}`);
    process.exit(1);
  });
  server.listen(port, host, () => {
    const addr = server.address();
    const shownHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
    console.log(`listening on http://${shownHost}:${addr.port}`);
  });
}

main();
