// The service worker: keeps the app shell (the built files, listed at build time) in
// the Cache API so that the app starts with no network. The documents are not here:
// automerge-repo keeps them in IndexedDB. Requests outside the app's own path (the
// relay's /api and /sync) are left alone.
//
// vite.config.ts fills in the version and the file list when it builds.

const VERSION = "9811892320e4"
const FILES = ["./","assets/automerge-LjMxZKTS.wasm","assets/index-BziSGVIN.js","assets/index-CwREB7ed.css","icons/icon-192.png","icons/icon-512.png","index.html","manifest.webmanifest"]
const CACHE = `dealersync-app-${VERSION}`
const scope = new URL(self.registration.scope)

self.addEventListener("install", event => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then(cache => cache.addAll(FILES.map(f => new URL(f, scope).toString())))
      .then(() => self.skipWaiting()),
  )
})

self.addEventListener("activate", event => {
  event.waitUntil(
    caches
      .keys()
      .then(keys => Promise.all(keys.filter(k => k.startsWith("dealersync-app-") && k !== CACHE).map(k => caches.delete(k))))
      .then(() => self.clients.claim()),
  )
})

self.addEventListener("fetch", event => {
  const url = new URL(event.request.url)
  if (event.request.method !== "GET" || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return
  // Every page of the app is the one index.html (the link with a sign-in code too).
  const key = event.request.mode === "navigate" ? new URL("index.html", scope).toString() : url.origin + url.pathname
  event.respondWith(
    caches.open(CACHE).then(async cache => {
      const hit = await cache.match(key)
      if (hit) return hit
      const res = await fetch(event.request)
      if (res.ok && event.request.mode !== "navigate") cache.put(key, res.clone())
      return res
    }),
  )
})
