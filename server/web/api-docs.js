// A readable page of the relay's OpenAPI description (/api/openapi.json): every
// route with its parameters, body and answers. Rendered here from the JSON, so it
// works without the internet (no Swagger UI from a CDN).
import { el, tr, topBar } from "/web/common.js";

const METHOD_ORDER = ["get", "post", "put", "patch", "delete"];

/** A schema as short text: `{a: string, b?: integer}`, `[item]`, `$ref` names. */
function schemaText(s, doc, depth = 0) {
  if (!s) return "";
  if (s.$ref) {
    const name = s.$ref.split("/").pop();
    const target = doc.components?.schemas?.[name];
    return depth < 1 && target ? `${name} ${schemaText(target, doc, depth + 1)}` : name;
  }
  if (s.type === "array") return `[${schemaText(s.items, doc, depth)}]`;
  if (s.properties && depth < 2) {
    const req = new Set(s.required || []);
    const fields = Object.entries(s.properties).map(([k, v]) => `${k}${req.has(k) ? "" : "?"}: ${schemaText(v, doc, depth + 1)}`);
    return `{${fields.join(", ")}}`;
  }
  if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join(" | ");
  if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).map((x) => schemaText(x, doc, depth)).join(" | ");
  return s.type || (s.properties ? "object" : "any");
}

function operation(path, method, op, doc) {
  const params = op.parameters || [];
  const body = op.requestBody?.content?.["application/json"]?.schema;
  return el(
    "section",
    { class: "card api-op", id: `${method}-${path}` },
    el("h3", {}, el("code", { class: `method ${method}` }, method.toUpperCase()), " ", el("code", {}, path)),
    op.summary ? el("p", {}, op.summary) : null,
    op.description ? el("p", { class: "muted" }, op.description) : null,
    params.length
      ? el(
          "table",
          {},
          el("thead", {}, el("tr", {}, ["name", "in", "schema", ""].map((h) => el("th", {}, h)))),
          el(
            "tbody",
            {},
            params.map((p) =>
              el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, el("code", {}, schemaText(p.schema, doc))), el("td", {}, p.description || "")),
            ),
          ),
        )
      : null,
    body ? el("p", {}, tr({ zh: "请求体：", en: "Body: " }), el("code", {}, schemaText(body, doc))) : null,
    el(
      "ul",
      {},
      Object.entries(op.responses || {}).map(([code, r]) => {
        const schema = r.content?.["application/json"]?.schema;
        return el("li", {}, el("strong", {}, code), " ", r.description || "", schema ? [" — ", el("code", {}, schemaText(schema, doc))] : null);
      }),
    ),
  );
}

async function main() {
  const app = document.getElementById("app");
  const bar = topBar(tr({ zh: "接口说明", en: "API" }), null, main, [["/board", tr({ zh: "销售看板", en: "Sales board" })], ["/console", tr({ zh: "管理控制台", en: "Console" })]]);
  const resp = await fetch("/api/openapi.json", { credentials: "same-origin" });
  if (!resp.ok) {
    app.replaceChildren(
      bar,
      el("main", { class: "api-docs" }, el("p", {}, tr({ zh: `此中继没有提供 /api/openapi.json（HTTP ${resp.status}）。`, en: `This relay serves no /api/openapi.json (HTTP ${resp.status}).` }))),
    );
    return;
  }
  const doc = await resp.json();
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths || {}).sort(([a], [b]) => a.localeCompare(b))) {
    for (const m of METHOD_ORDER) if (item[m]) ops.push(operation(path, m, item[m], doc));
  }
  app.replaceChildren(
    bar,
    el(
      "main",
      { class: "api-docs", id: "api-docs" },
      el("h2", {}, `${doc.info?.title ?? "API"} ${doc.info?.version ?? ""}`),
      doc.info?.description ? el("p", { class: "muted" }, doc.info.description) : null,
      el("p", {}, el("a", { href: "/api/openapi.json" }, "openapi.json"), ` · ${ops.length} ${tr({ zh: "个接口", en: "operations" })}`),
      ops,
    ),
  );
}

main().catch((e) => document.getElementById("app").replaceChildren(el("p", { class: "error" }, e.message)));
