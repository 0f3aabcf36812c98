"""The page's inline CSS and its one small script (sortable tables); nothing is fetched."""

CSS = """
:root {
  --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #ffffff; --zebra: #f6f8fa; --head: #eef1f4;
  --accent: #0b5cad; --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #b3261e; --fail-bg: #ffebe9;
  --known: #8a5a00; --known-bg: #fff4d6; --error: #7d2ea8; --error-bg: #f5e8ff;
  --skip: #656d76; --skip-bg: #eef1f4;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: var(--fg); background: var(--bg);
  font: 15px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "Liberation Sans", sans-serif;
}
main, header > div { max-width: 1320px; margin: 0 auto; padding: 0 28px; }
header { background: #17212b; color: #f0f3f6; padding: 26px 0 20px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; }
header .meta { color: #b7c0c9; font-size: 13.5px; }
header code { color: #e6edf3; background: rgba(255, 255, 255, 0.08); }
nav.toc { margin: 14px 0 0; font-size: 14px; }
nav.toc ol { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 8px; margin: 0; padding: 0; }
nav.toc a {
  display: inline-block; color: #e6edf3; text-decoration: none; padding: 3px 11px;
  border: 1px solid rgba(255, 255, 255, 0.22); border-radius: 999px;
}
nav.toc a:hover { background: rgba(255, 255, 255, 0.12); }
section { padding: 8px 0 18px; border-bottom: 1px solid var(--line); }
section:last-child { border-bottom: 0; }
h2 { font-size: 21px; font-weight: 650; margin: 26px 0 10px; scroll-margin-top: 12px; }
h3 { font-size: 16px; font-weight: 620; margin: 22px 0 8px; }
p { margin: 6px 0 10px; max-width: 88ch; }
p.note, .muted { color: var(--muted); }
p.note { font-size: 13.5px; }
a { color: var(--accent); }
code {
  font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  background: var(--zebra); padding: 1px 5px; border-radius: 4px; word-break: break-all;
}
.headline {
  margin: 16px 0 12px; padding: 12px 16px; border-left: 5px solid var(--pass); background: var(--pass-bg);
  border-radius: 4px; font-size: 16px; font-weight: 550; max-width: none;
}
.headline.bad { border-left-color: var(--fail); background: var(--fail-bg); }
.headline.empty { border-left-color: var(--skip); background: var(--skip-bg); font-weight: 450; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0 6px; }
.card { min-width: 112px; padding: 8px 14px; border: 1px solid var(--line); border-radius: 6px; }
.card b { display: block; font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card span { color: var(--muted); font-size: 12.5px; text-transform: uppercase; letter-spacing: 0.04em; }
.card.pass b { color: var(--pass); } .card.fail b { color: var(--fail); } .card.known b { color: var(--known); }
.card.error b { color: var(--error); } .card.skip b { color: var(--skip); }
.scroll { overflow-x: auto; margin: 6px 0 12px; border: 1px solid var(--line); border-radius: 6px; }
.scroll.fit { width: fit-content; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { padding: 5px 10px; text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); }
thead th {
  background: var(--head); font-weight: 600; white-space: nowrap; border-bottom: 1px solid #c4ccd4;
  position: relative;
}
tbody tr:nth-child(even) { background: var(--zebra); }
tbody tr:hover { background: #eaf2fb; }
tbody tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
td.small { font-size: 12.5px; color: #3d444d; min-width: 11em; overflow-wrap: anywhere; }
td.case { font-size: 12.5px; overflow-wrap: anywhere; min-width: 16em; }
table.matrix tbody th { font-weight: 600; white-space: nowrap; width: 1%; }
table.environments td { min-width: 16em; }
table.environments td.shared { color: #3d444d; text-align: center; }
td.prose { min-width: 26em; }
td.none { color: #9aa3ac; }
td.best { font-weight: 650; color: var(--pass); }
td.differs { background: var(--known-bg); font-weight: 600; }
td.o-pass { color: var(--pass); background: var(--pass-bg); font-weight: 600; }
td.o-fail { color: var(--fail); background: var(--fail-bg); font-weight: 650; }
td.o-known { color: var(--known); background: var(--known-bg); font-weight: 600; }
td.o-error { color: var(--error); background: var(--error-bg); font-weight: 650; }
td.o-skip { color: var(--skip); background: var(--skip-bg); }
td.zero { color: #b0b7be; }
td.loaded { color: var(--fail); font-weight: 600; }
td .spread { color: var(--known); font-size: 12px; font-weight: 600; cursor: help; margin-left: 4px; }
td .faults { color: var(--muted); font-size: 12px; }
td .ratio { font-size: 12px; font-weight: 600; margin-left: 2px; }
td .ratio.better { color: var(--pass); } td .ratio.worse { color: var(--fail); }
p.allocator { font-size: 14px; padding: 6px 12px; border-left: 4px solid var(--line); background: var(--zebra);
  border-radius: 4px; max-width: none; }
dl.allocators { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0 10px;
  font-size: 13.5px; max-width: 110ch; }
dl.allocators dt { font-weight: 600; } dl.allocators dd { margin: 0; color: #3d444d; }
.fit > .scroll { width: fit-content; max-width: 100%; }
h4 { font-size: 13.5px; font-weight: 600; margin: 14px 0 4px; color: var(--muted); text-transform: uppercase;
  letter-spacing: 0.04em; }
.warnings {
  margin: 0 0 12px; padding: 10px 16px; border-left: 5px solid var(--known); background: var(--known-bg);
  border-radius: 4px; font-size: 14px;
}
.warnings ul { margin: 4px 0 0; padding-left: 20px; }
table.heatmap { width: auto; font-size: 12px; }
table.heatmap th, table.heatmap td { padding: 3px 8px; }
table.heatmap thead th + th { text-align: right; }
table.heatmap tbody th {
  font-weight: 500; white-space: nowrap; position: sticky; left: 0; background: var(--bg); z-index: 1;
  border-right: 1px solid var(--line);
}
table.heatmap tbody tr:nth-child(even) th { background: var(--zebra); }
table.heatmap td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; min-width: 6.5em;
  border-left: 2px solid var(--bg); }
.h0 { background: #eef8f0; color: #3d6b47; } .h1 { background: #d6f0dc; color: #24582f; }
.h2 { background: #b9e4c2; color: #1c4d27; } .h3 { background: #e4e9a6; color: #4a4a10; }
.h4 { background: #ffdc8f; color: #5c3d00; } .h5 { background: #f6b24f; color: #422800; font-weight: 650; }
.h-known { color: var(--known); font-weight: 600;
  background: repeating-linear-gradient(135deg, #f1ead9 0 5px, #e2d8bf 5px 10px); }
.h-fail { background: #ffc9c3; color: #8f1d17; font-weight: 700; }
.h-error { background: var(--fail); color: #fff; font-weight: 700; }
.h-none { background: transparent; }
.h-skip { background: var(--skip-bg); color: var(--skip); }
table.heatmap tbody tr.group th {
  background: var(--head); font-weight: 600; position: static; border-top: 1px solid #c4ccd4;
}
table.sync-facts thead th, table.sync-errors thead th { white-space: normal; vertical-align: bottom; }
table.sync-facts td { min-width: 8em; font-size: 13px; overflow-wrap: anywhere; }
table.sync-facts td:nth-of-type(1) { min-width: 13em; max-width: 22em; }
table.sync-errors td { min-width: 5.5em; }
table.heatmap.derivatives thead th { text-align: center; }
table.heatmap.derivatives thead th[rowspan] { text-align: left; vertical-align: bottom; }
table.derivatives td { min-width: 5.5em; }
table.derivatives .op-start, table.derivatives thead th[scope="colgroup"] { border-left: 2px solid #c4ccd4; }
table.mixed-paths thead th { white-space: normal; vertical-align: bottom; }
table.mixed-paths td { font-size: 13px; }
table.mixed-paths td.ops { white-space: nowrap; }
table.mixed-paths td.how { min-width: 24em; max-width: 32em; }
table.mixed-paths td.verdict { min-width: 11em; }
table.mixed-paths td.how code { word-break: normal; overflow-wrap: anywhere; font-size: 12px; }
table.mixed-paths td.how .doc { display: block; font-size: 12px; margin-top: 2px; }
table.mixed-paths td[class*="h-"] { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.mixed-paths tbody tr.group th { background: var(--head); font-weight: 600; border-top: 1px solid #c4ccd4; }
p.legend { font-size: 13px; line-height: 2; max-width: none; }
p.legend span { padding: 2px 7px; border-radius: 3px; white-space: nowrap; }
p.legend span.h-none { border: 1px dashed #c4ccd4; }
table.js-sort thead th { cursor: pointer; user-select: none; padding-right: 22px; }
table.js-sort thead th:hover { background: #e1e6eb; }
table.js-sort thead th::after { content: "\\2195"; position: absolute; right: 7px; color: #9aa3ac; font-size: 11px; }
table.js-sort thead th[aria-sort="ascending"]::after { content: "\\25B2"; color: var(--fg); }
table.js-sort thead th[aria-sort="descending"]::after { content: "\\25BC"; color: var(--fg); }
.bar { display: flex; align-items: center; gap: 8px; justify-content: flex-end; }
.bar i { display: block; height: 9px; background: #6e9fd1; border-radius: 2px; min-width: 1px; }
.bar .track { width: 160px; display: flex; justify-content: flex-start; background: #e7ecf1; border-radius: 2px; }
figure { margin: 10px 0 18px; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; max-width: 100ch; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 8px 24px; }
.op-blocks { display: flex; flex-wrap: wrap; gap: 4px 22px; align-items: flex-start; }
.op-block { max-width: 100%; }
.op-block h4 { margin: 10px 0 4px; color: var(--fg); text-transform: none; letter-spacing: 0; font-size: 14.5px; }
.op-block .scroll { width: fit-content; max-width: 100%; margin-top: 0; }
.op-block table.matrix { width: auto; }
.op-block table.matrix td { white-space: nowrap; }
.alert {
  margin: 14px 0 12px; padding: 10px 16px 4px; border-left: 5px solid var(--fail); background: var(--fail-bg);
  border-radius: 4px;
}
.alert > b { color: var(--fail); font-size: 15.5px; }
.alert .scroll { background: var(--bg); }
details.reasons { margin: 0 0 12px; font-size: 13.5px; }
details.reasons summary, details.sweep summary { cursor: pointer; color: var(--accent); }
details.reasons dl { margin: 6px 0 0; max-width: 110ch; }
details.reasons dt { font-weight: 600; margin-top: 6px; }
details.reasons dd { margin: 0 0 0 18px; color: #3d444d; }
details.sweep { margin: 10px 0 12px; }
details.sweep summary { font-size: 13.5px; font-weight: 600; text-transform: uppercase; letter-spacing: 0.04em; }
details.sweep summary span { color: var(--muted); text-transform: none; letter-spacing: 0; font-weight: 400; }
footer { color: var(--muted); font-size: 12.5px; padding: 18px 0 30px; }
@media print { header { background: none; color: var(--fg); } nav.toc { display: none; } }
"""

SCRIPT = """
(function () {
  "use strict";
  function key(cell) {
    var v = cell.getAttribute("data-v");
    if (v !== null) { return v === "" ? NaN : parseFloat(v); }
    return cell.textContent.trim().toLowerCase();
  }
  function compare(a, b) {
    var an = typeof a === "number", bn = typeof b === "number";
    if (an && bn) {
      if (isNaN(a) || isNaN(b)) { return isNaN(a) - isNaN(b); }
      return a - b;
    }
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }
  function sortBy(table, th, col) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return {row: row, key: key(row.cells[col]), i: i};
    });
    rows.sort(function (a, b) {
      var c = compare(a.key, b.key);
      if (typeof a.key === "number" && (isNaN(a.key) || isNaN(b.key))) { return c || a.i - b.i; }
      return (ascending ? c : -c) || a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    table.classList.add("js-sort");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.tabIndex = 0;
      th.title = "Sort by " + th.textContent.trim();
      th.addEventListener("click", function () { sortBy(table, th, col); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th, col); }
      });
    });
  });
})();
"""
