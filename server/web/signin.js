// The sign-in page: a one-time code (from a link or typed) exchanged for a session
// cookie. Opening the link does not use the code up; pressing the button does, so a
// chat app's link preview cannot burn it.
import { el, tr, lang, setLang, api, ApiError, ROLE_NAMES } from "/web/common.js";

const params = new URLSearchParams(location.search);
const fromLink = params.get("code") || "";
// Only a path on this relay: never send a person elsewhere after signing in.
const next = /^\/[a-z-]*$/.test(params.get("next") || "") ? params.get("next") : null;
// The code stays out of the address bar (and the browser history) once read.
if (fromLink) history.replaceState(null, "", next ? "/signin?next=" + next : "/signin");

function render(message) {
  const app = document.getElementById("app");
  const input = el("input", {
    id: "code",
    name: "code",
    autocomplete: "one-time-code",
    inputmode: "text",
    maxlength: "12",
    placeholder: "ABCD-EFGH",
    value: fromLink,
    required: true,
    autofocus: true,
  });
  const status = el("p", { class: "status", id: "status", role: "status" }, message || "");
  const form = el(
    "form",
    {
      onsubmit: async (ev) => {
        ev.preventDefault();
        status.textContent = tr({ zh: "正在登录…", en: "Signing in…" });
        status.className = "status";
        try {
          const who = await api("/api/sign-in", { method: "POST", body: { code: input.value }, noRedirect: true });
          status.textContent = tr({ zh: "欢迎，", en: "Welcome, " }) + who.sub;
          location.href = next || "/board";
        } catch (e) {
          status.className = "status error";
          status.textContent =
            e instanceof ApiError && e.kind === "invalid_code"
              ? tr({ zh: "登录码无效：可能输错、已使用或已过期。请向经理索取新的登录码。", en: "This code is not valid: mistyped, already used or expired. Ask your manager for a new one." })
              : e instanceof ApiError && e.kind === "rate_limited"
                ? tr({ zh: "尝试次数过多，请稍后再试。", en: "Too many attempts; try again later." }) + " " + e.message
                : e.message;
        }
      },
    },
    el("label", { for: "code" }, tr({ zh: "登录码", en: "Sign-in code" })),
    input,
    el("button", { type: "submit", id: "sign-in", class: "primary" }, tr({ zh: "登录", en: "Sign in" })),
    status,
  );
  app.replaceChildren(
    el("h1", {}, tr({ zh: "销售看板 · 登录", en: "Sales board · Sign in" })),
    el(
      "p",
      { class: "hint" },
      tr({
        zh: "请输入经理或总部发给您的一次性登录码（10 分钟内有效，只能使用一次）。",
        en: "Enter the one-time code your manager or head office gave you (good for 10 minutes, once).",
      }),
    ),
    form,
    el(
      "button",
      {
        class: "lang-toggle",
        id: "lang-toggle",
        onclick: () => {
          setLang(lang() === "zh" ? "en" : "zh");
          render();
        },
      },
      lang() === "zh" ? "English" : "中文",
    ),
  );
}

// Already signed in (and not here to switch users)? Straight on.
if (!fromLink) {
  api("/api/me", { noRedirect: true })
    .then((who) => {
      render(tr({ zh: "已登录：", en: "Signed in as " }) + `${who.sub} (${tr(ROLE_NAMES[who.role] ?? { zh: who.role })})`);
    })
    .catch(() => render());
} else {
  render();
}
