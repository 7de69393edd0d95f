// Templates ranked by how they do: open, reply and win rates with their 90% credible intervals, and a
// Recommended badge where Engage is confident one does better.

import type { Ctx } from "./ctx";
import type { Draft } from "./draft";
import { field, h, replace } from "./dom";
import { percent } from "./format";

export interface Template {
  id: string;
  name: string;
  subject: string;
  html: string;
  category: string;
}
interface Rate {
  mean: number;
  low: number;
  high: number;
  n: number;
}
interface Recommendation {
  template: Template;
  emails: number;
  openRate: Rate;
  replyRate: Rate;
  winRate: Rate;
  recommended: boolean;
  why: string;
}

function rate(r: Rate): string {
  return r.n === 0 ? "no data" : `${percent(r.mean)} (${percent(r.low)}–${percent(r.high)}, n=${r.n})`;
}

/** templatesPanel lists a category's templates, best first; use fills the form with the chosen one. */
export function templatesPanel(ctx: Ctx, d: Draft, use: (t: Template) => void): HTMLElement {
  const category = h("select", { name: "category" }, h("option", { value: "" }, "Choose a category"));
  const list = h("div", { class: "templates", "aria-live": "polite" });
  const show = async () => {
    d.category = category.value;
    if (!d.category) {
      replace(list);
      return;
    }
    replace(list, h("p", { class: "hint" }, "Ranking templates…"));
    try {
      const r = await ctx.api.query<{ templateRecommendations: Recommendation[] }>(
        `query Rank($c: String!) { templateRecommendations(category: $c) {
          template { id name subject html category } emails recommended why
          openRate { mean low high n } replyRate { mean low high n } winRate { mean low high n } } }`,
        { c: d.category },
      );
      const table = h(
        "table",
        { class: "template-table" },
        h("caption", {}, `Templates in “${d.category}”, recommended first`),
        h("thead", {}, h("tr", {}, ...["Template", "Emails", "Opened", "Replied", "Won", ""].map((t) => h("th", { scope: "col" }, t)))),
      );
      const tbody = h("tbody");
      for (const t of r.templateRecommendations) {
        const useButton = h("button", { type: "button", class: "secondary", "aria-label": `Use template ${t.template.name}` }, "Use");
        useButton.addEventListener("click", () => use(t.template));
        tbody.append(
          h(
            "tr",
            { class: d.templateId === t.template.id ? "chosen" : "" },
            h("th", { scope: "row" }, t.template.name, t.recommended ? h("span", { class: "badge", title: t.why }, "Recommended") : null,
              h("span", { class: "hint block" }, t.why)),
            h("td", {}, t.emails),
            h("td", {}, rate(t.openRate)),
            h("td", {}, rate(t.replyRate)),
            h("td", {}, rate(t.winRate)),
            h("td", {}, useButton),
          ),
        );
      }
      table.append(tbody);
      replace(list, r.templateRecommendations.length ? table : h("p", { class: "hint" }, "No templates in this category."));
    } catch (e) {
      replace(list, h("p", { class: "error" }, `Templates could not be ranked: ${e instanceof Error ? e.message : String(e)}`));
    }
  };
  category.addEventListener("change", () => void show());
  void ctx.api
    .query<{ templates: Template[] }>(`query Templates { templates { id category } }`)
    .then((r) => {
      const cats = [...new Set(r.templates.map((t) => t.category))].sort();
      for (const c of cats) category.append(h("option", { value: c }, c));
      if (cats.length === 0) category.append(h("option", { value: "", disabled: true }, "No templates yet"));
      if (d.category && cats.includes(d.category)) {
        category.value = d.category;
        void show();
      }
    })
    .catch(() => replace(list, h("p", { class: "error" }, "Templates could not be listed.")));
  return h("fieldset", {}, h("legend", {}, "Templates"), field("Category", category), list);
}
