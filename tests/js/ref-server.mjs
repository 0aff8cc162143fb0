// The automerge-repo reference sync server, as people deploy it: a Repo with the stock
// NodeWSServerAdapter (and, with --data-dir, the stock NodeFS storage adapter). A dev
// tool to check client.mjs against the protocol's own implementation and to compare
// dealersync's relay with it (README.md in this directory).
//
//   node ref-server.mjs [--port 0] [--host 127.0.0.1] [--data-dir DIR]
//
// Prints one line `{"port":N}` on stdout when listening; serves the WebSocket on every
// path (so /sync works as with dealersync) and GET /healthz.

import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import http from "node:http"
import { parseArgs } from "node:util"
import { WebSocketServer } from "ws"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    "data-dir": { type: "string" },
    // "none" is what automerge-repo's examples/sync-server deploys; "all" also
    // announces every document to every peer.
    "share-policy": { type: "string", default: "none" },
  },
})

const httpServer = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok\n")
  } else {
    res.writeHead(404).end()
  }
})
const wss = new WebSocketServer({ server: httpServer })

const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: values["data-dir"] ? new NodeFSStorageAdapter(values["data-dir"]) : undefined,
  peerId: `ref-server-${process.pid}`,
  sharePolicy: async () => values["share-policy"] === "all",
})

httpServer.listen(Number(values.port), values.host, () => {
  process.stdout.write(JSON.stringify({ port: httpServer.address().port }) + "\n")
})

async function stop() {
  await repo.shutdown().catch(() => {})
  httpServer.close()
  process.exit(0)
}
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
