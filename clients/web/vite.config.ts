// Builds the app for the relay's /app/ path, and writes the service worker with the
// list of files to keep for offline start (see src/sw.js).

import { createHash } from "node:crypto"
import { readFileSync, readdirSync } from "node:fs"
import { defineConfig, type Plugin } from "vite"

function serviceWorker(): Plugin {
  return {
    name: "dealersync-service-worker",
    apply: "build",
    generateBundle(_options, bundle) {
      // The public/ files (manifest, icons) are copied as they are, outside the bundle.
      const publicFiles = (readdirSync(new URL("./public", import.meta.url), { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[])
        .filter(d => d.isFile())
        .map(d => `${d.parentPath.replace(/.*\/public\/?/, "")}/${d.name}`.replace(/^\//, ""))
      const files = ["./", "index.html", ...Object.keys(bundle).filter(f => f !== "index.html"), ...publicFiles].sort()
      const hash = createHash("sha256")
      for (const name of Object.keys(bundle).sort()) {
        const item = bundle[name]
        hash.update(name)
        hash.update(item.type === "chunk" ? item.code : item.source)
      }
      const source = readFileSync(new URL("./src/sw.js", import.meta.url), "utf8")
        .replace("__VERSION__", JSON.stringify(hash.digest("hex").slice(0, 12)))
        .replace("__PRECACHE__", JSON.stringify(files))
      this.emitFile({ type: "asset", fileName: "sw.js", source })
    },
  }
}

// `npm run dev` / `vite preview`: the relay's API and sync socket, proxied.
const relay = process.env.DEALERSYNC_RELAY ?? "http://127.0.0.1:3030"
const proxy = { "/api": relay, "/sync": { target: relay, ws: true } }

export default defineConfig({
  base: "/app/",
  server: { proxy },
  preview: { proxy },
  plugins: [serviceWorker()],
  build: {
    target: "es2022",
    assetsInlineLimit: 0,
    // The wasm file is automerge itself (about 1 MB gzipped to a third); nothing to split.
    chunkSizeWarningLimit: 2000,
  },
})
