#!/usr/bin/env node
// The automerge-repo JavaScript sync server, for benches/compare.sh: an
// unmodified `Repo` with NodeWSServerAdapter and NodeFSStorageAdapter, the
// way the reference automerge-repo-sync-server runs (documents are not
// announced to peers that did not ask for them).
//
//   node server.mjs --listen 127.0.0.1:0 --data DIR
//
// prints `listening on http://HOST:PORT` once bound and serves the sync
// protocol at ws://HOST:PORT/v1/sync (and /).

import http from "node:http";
import { parseArgs } from "node:util";

import { Repo } from "@automerge/automerge-repo";
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";

const { values } = parseArgs({
  options: {
    listen: { type: "string", default: "127.0.0.1:0" },
    data: { type: "string", default: "./js-server-data" },
  },
});
const sep = values.listen.lastIndexOf(":");
const host = values.listen.slice(0, sep);
const port = Number(values.listen.slice(sep + 1));

const server = http.createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404);
  res.end();
});
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 << 20 });
server.on("upgrade", (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
});

const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(values.data),
  peerId: `js-server-${process.pid}`,
  sharePolicy: async () => false,
});

const stop = () => {
  setTimeout(() => process.exit(0), 2000).unref();
  repo.shutdown().finally(() => process.exit(0));
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

server.listen(port, host, () => {
  const a = server.address();
  console.log(`listening on http://${a.address}:${a.port}`);
});
