// Charts as inline SVG built with DOM calls, and the progress bar against a target:
// a few dozen lines instead of a charting library, and nothing to fetch.
import { el, svg, pct } from "/web/common.js";

/** Series colours, the same in the legend (`.legend .sN`) and the bars. */
export const COLOURS = ["#2e86de", "#f39c12", "#27ae60", "#c0392b", "#8e44ad"];

/**
 * How a ratio stands against the pace (the share of the period gone by): `good` at
 * or ahead of it, `warn` within 80% of it, `bad` behind.
 */
export function paceClass(ratio, pace) {
  if (ratio === null || ratio === undefined) return "";
  const need = Math.max(pace ?? 1, 0.0001);
  if (ratio >= need) return "good";
  if (ratio >= need * 0.8) return "warn";
  return "bad";
}

/**
 * A progress bar: `label`, the filled share (capped at the track; the percentage
 * shows the real figure), and a mark where the pace stands.
 */
export function progressBar(label, ratio, pace, title) {
  const fill = el("div", { class: "fill " + paceClass(ratio, pace) });
  fill.style.width = Math.min(Math.max(ratio ?? 0, 0), 1) * 100 + "%";
  const track = el("div", { class: "track", title: title || "" }, fill);
  if (pace !== null && pace !== undefined) {
    const mark = el("div", { class: "pace-mark" });
    mark.style.left = `calc(${Math.min(pace, 1) * 100}% - 1px)`;
    track.append(mark);
  }
  const known = ratio !== null && ratio !== undefined;
  return el("div", { class: label ? "bar" : "bar bare" }, label ? el("span", {}, label) : null, track, el("span", { class: known ? "pc" : "pc none" }, known ? pct(ratio) : "—"));
}

/**
 * Horizontal stacked bars: `rows` of `{label, values: [n, ...]}` (one value per
 * series), with the total at the end of each bar. Text colours come from the page's
 * CSS (`text`, `text.inbar`), so the same chart reads on the dark board and the console.
 */
export function stackedBars(rows, { width = 640, rowHeight = 34, labelWidth = 150 } = {}) {
  const max = Math.max(1, ...rows.map((r) => r.values.reduce((a, b) => a + b, 0)));
  const plot = width - labelWidth - 60;
  const height = rows.length * rowHeight + 6;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  rows.forEach((r, i) => {
    const y = i * rowHeight + 4;
    root.append(svg("text", { x: labelWidth - 10, y: y + rowHeight * 0.6, "text-anchor": "end", "font-size": 16 }, r.label));
    let x = labelWidth;
    r.values.forEach((v, s) => {
      const w = (v / max) * plot;
      if (w > 0) {
        root.append(
          svg("rect", { x, y: y + 4, width: w, height: rowHeight - 10, fill: COLOURS[s % COLOURS.length], rx: 3 }, svg("title", {}, `${r.label}: ${v}`)),
        );
        if (w > 26) {
          root.append(svg("text", { x: x + w / 2, y: y + rowHeight * 0.6, "text-anchor": "middle", "font-size": 13, class: "inbar" }, v));
        }
      }
      x += w;
    });
    const total = r.values.reduce((a, b) => a + b, 0);
    root.append(
      svg("text", { x: x + 8, y: y + rowHeight * 0.6, "font-size": 16, "font-weight": 700 }, total),
    );
  });
  return root;
}

/**
 * Grouped vertical bars: `groups` of `{label, values: [n, ...]}`, one bar per series
 * in each group, with a value axis from 0. `format` prints a value; `reference` draws
 * a dashed line at that value (a target), labelled `referenceLabel`.
 */
export function groupedBars(groups, { width = 760, height = 300, format = String, reference = null, referenceLabel = "" } = {}) {
  const series = Math.max(1, ...groups.map((g) => g.values.length));
  const max = Math.max(1, reference ?? 0, ...groups.flatMap((g) => g.values.filter((v) => v !== null && v !== undefined)));
  const left = 56;
  const bottom = 40;
  const plotH = height - bottom - 16;
  const plotW = width - left - 10;
  const groupW = plotW / Math.max(1, groups.length);
  const barW = Math.min(36, (groupW * 0.75) / series);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  for (let t = 0; t <= 4; t++) {
    const v = (max * t) / 4;
    const y = 16 + plotH - (v / max) * plotH;
    root.append(svg("line", { x1: left, x2: width - 10, y1: y, y2: y, stroke: "#d5e0ec" }));
    root.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 12, class: "axis" }, format(v)));
  }
  if (reference !== null) {
    // The line every bar is measured against (e.g. 100% of target).
    const y = 16 + plotH - (reference / max) * plotH;
    root.append(svg("line", { x1: left, x2: width - 10, y1: y, y2: y, stroke: "#c0392b", "stroke-width": 2, "stroke-dasharray": "6 4" }));
    root.append(svg("text", { x: width - 12, y: y - 5, "text-anchor": "end", "font-size": 12, class: "reference" }, referenceLabel));
  }
  groups.forEach((g, i) => {
    const x0 = left + i * groupW + (groupW - barW * series) / 2;
    g.values.forEach((v, s) => {
      if (v === null || v === undefined) return;
      const h = (v / max) * plotH;
      root.append(
        svg(
          "rect",
          { x: x0 + s * barW, y: 16 + plotH - h, width: barW - 3, height: h, fill: COLOURS[s % COLOURS.length], rx: 2 },
          svg("title", {}, `${g.label}: ${format(v)}`),
        ),
      );
    });
    root.append(svg("text", { x: left + i * groupW + groupW / 2, y: height - bottom + 18, "text-anchor": "middle", "font-size": 13 }, g.label));
  });
  return root;
}

/** A legend for the series names, in the chart colours. */
export function legend(names) {
  return el("div", { class: "legend" }, names.map((n, i) => el("span", { class: "s" + i }, n)));
}
