// Devices: which tablets are connected, when each last synced, and how many
// documents each still has to sync; and this node's live connections.

import { api } from "./api.js";
import { badge, empty, h, panel } from "./dom.js";
import { ago, dateTime } from "./format.js";

/** Render the devices page (fetches `GET /v1/devices` and `GET /v1/status`). */
export async function renderDevices() {
  const [devices, status] = await Promise.all([api("/v1/devices"), api("/v1/status")]);
  const list = [...(devices?.devices || [])].sort((a, b) =>
    Number(b.connected) - Number(a.connected) || (b.last_sync_ms || 0) - (a.last_sync_ms || 0));
  const peers = status?.peers || [];

  return h("div", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Devices")),
    panel(null, {},
      list.length === 0
        ? empty("No device has connected to this node with a token yet.")
        : h("table", { class: "table devices", "data-testid": "devices" },
          h("thead", {}, h("tr", {},
            h("th", {}, "Device"), h("th", {}, "Connection"), h("th", {}, "Last sync"),
            h("th", {}, "Waiting to sync"), h("th", {}, "Last seen"))),
          h("tbody", {}, list.map((d) => h("tr", { "data-device": d.device },
            h("td", {}, h("strong", {}, d.device)),
            h("td", {}, d.connected ? badge("Online", "status-active") : badge("Offline", "muted")),
            h("td", { title: dateTime(d.last_sync_ms) }, ago(d.last_sync_ms)),
            h("td", {}, d.connected
              ? (d.pending > 0 ? badge(`${d.pending} documents`, "warn") : "Up to date")
              : h("span", { class: "muted" }, "—")),
            h("td", { title: dateTime(d.last_seen_ms) }, ago(d.last_seen_ms))))))),
    panel("This node", {},
      h("dl", { class: "facts" },
        h("dt", {}, "Node"), h("dd", { class: "mono" }, status?.peer_id || "?"),
        h("dt", {}, "Documents"), h("dd", {}, String(status?.documents ?? "?")),
        h("dt", {}, "Live connections"), h("dd", {}, String(peers.length))),
      peers.length
        ? h("table", { class: "table" },
          h("thead", {}, h("tr", {},
            h("th", {}, "Peer"), h("th", {}, "Direction"), h("th", {}, "Pending"),
            h("th", {}, "Sent"), h("th", {}, "Received"), h("th", {}, "Last sync"))),
          h("tbody", {}, peers.map((p) => h("tr", {},
            h("td", {}, h("strong", {}, p.device), h("div", { class: "hint mono" }, p.peer_id)),
            h("td", {}, p.direction === "outbound" ? `dialed ${p.url || ""}` : "dialed in"),
            h("td", {}, String(p.pending)),
            h("td", {}, String(p.sent)),
            h("td", {}, String(p.received)),
            h("td", {}, ago(p.last_sync_ms))))))
        : null));
}
