"""The stepper page's HTML, style and script: one file, nothing fetched.

The Content-Security-Policy forbids every request (scripts, styles, images, fonts,
connections), so a page that works at all works offline. The script only shows step k's
stored parts: it computes no number.
"""

from __future__ import annotations

KEYS = (
    ("→ n", "next step"),
    ("← p", "previous step (stepping back is exact)"),
    ("home g", "first step"),
    ("end G", "last step"),
    ("space", "play / pause"),
    ("m / M", "next / previous mode: values → tangents → adjoints"),
    ("w", "another input's tangent pass (forward mode)"),
    ("o", "another output's adjoint pass (reverse mode)"),
    ("f", "fit the graph to its pane, and back to full size"),
    ("click", "inspect a node (in the graph or the tape)"),
    ("esc", "follow the current node again"),
)

STYLE = """
html, body { height: 100%; }
body { font-family: system-ui, sans-serif; margin: 0; background: #fafafa; color: #111;
       display: flex; flex-direction: column; overflow: hidden; }
header { flex: 0 0 auto; padding: 6px 12px; background: #eef2f5; border-bottom: 1px solid #ccd; }
h1 { font-size: 15px; margin: 0 0 4px 0; font-weight: 600; }
pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px;
      white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
#gv-status { background: #fff; padding: 4px 6px; border: 1px solid #ccd; }
#gv-controls { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin-top: 6px; }
#gv-controls button { font-size: 14px; min-width: 2.4em; padding: 2px 8px; }
#gv-scrub { flex: 1 1 240px; }
#gv-message { color: #555; font-size: 13px; min-height: 1.2em; }
main { flex: 1 1 auto; min-height: 0; display: flex; gap: 8px; padding: 8px; }
#gv-graph { flex: 1 1 0; min-width: 0; overflow: auto; background: #fff; border: 1px solid #ccd; }
#gv-graph svg { display: block; }
#gv-graph.fit svg { max-width: 100%; max-height: 100%; width: auto; height: auto; }
#gv-side { flex: 1 1 0; min-width: 0; min-height: 0; display: flex; flex-direction: column; gap: 8px; }
#gv-inspector { flex: 1 1 0; min-height: 0; overflow: auto; background: #fff; border: 1px solid #ccd; padding: 6px; }
#gv-tape { flex: 0 1 auto; max-height: 45%; overflow: auto; background: #fff; border: 1px solid #ccd; }
#gv-tape table { border-collapse: collapse; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
                 font-size: 13px; }
#gv-tape th, #gv-tape td { padding: 1px 8px; text-align: left; white-space: nowrap; }
#gv-tape td.number { text-align: right; }
#gv-tape th { position: sticky; top: 0; background: #eef2f5; }
#gv-tape td.pending { color: #aaa; }
#gv-tape td.bad { color: #d62728; font-weight: bold; }
#gv-tape tr.current td { background: #ffe066; }
#gv-tape tr.selected td { background: #d6e9f8; }
#gv-tape tr { cursor: pointer; }
#gv-graph g.node { cursor: pointer; }
#gv-graph g.node.selected :is(ellipse, polygon, path) { stroke: #1f77b4; stroke-width: 3px; }
#gv-tape caption { text-align: left; font-size: 12px; color: #555; padding: 2px 8px; }
@media (max-width: 800px) {  /* a phone or a narrow window: the panes one under the other, the page scrolls */
  body { height: auto; overflow: visible; }
  main { flex-direction: column; }
  #gv-graph, #gv-side, #gv-inspector, #gv-tape { flex: 0 0 auto; }
  #gv-graph { max-height: 70vh; }
  #gv-tape { max-height: none; }
}
"""

SCRIPT = """
"use strict";
const DATA = JSON.parse(document.getElementById("gv-data").textContent);
const LAST = DATA.steps.length - 1;
const $ = (id) => document.getElementById(id);
let k = 0;
let timer = null;
let selected = null;  // a node clicked, whose inspector is shown; null: follow the current node

function joined(runs, texts) {  // runs: [start, count, …] of stored texts (Pieces in stepper_page.py)
  let out = "";
  for (let i = 0; i < runs.length; i += 2) out += texts.slice(runs[i], runs[i + 1] + runs[i]).join("");
  return out;
}

function drawing(runs) {  // a step's SVG: runs of stored elements, each runs of stored lines (Drawings)
  const stored = DATA.drawings;
  const elements = [];
  for (let i = 0; i < runs.length; i += 2) {
    for (let e = runs[i]; e < runs[i] + runs[i + 1]; e++) elements.push(joined(stored.elements[e], stored.lines));
  }
  return elements.join("");
}

function inspectorHtml(step) {
  if (selected === null) return step.inspector;
  const select = DATA.select;
  return joined(select.reports[select.at[k][selected]], select.lines);
}

function markSelected() {
  if (selected === null) return;
  for (const [key, node] of Object.entries(DATA.select.keys)) {
    if (node !== selected) continue;
    const box = document.getElementById(key);
    if (box) box.classList.add("selected");
  }
}

function select(node) {  // a node's index, undefined for a box that stands for none, null to follow again
  if (node !== null && !DATA.select) {
    show(k, "clicking a node inspects it where steps × nodes is at most " + DATA.select_limit
      + "; this graph is bigger (hover a node for its numbers)");
    return;
  }
  if (node === undefined) return;
  selected = node;
  show(k, selected === null ? "" : "selected " + DATA.select.labels[node] + " (esc follows the current node)");
}

function show(next, message) {
  k = Math.max(0, Math.min(LAST, next));
  const step = DATA.steps[k];
  $("gv-graph").innerHTML = drawing(step.svg);
  $("gv-status").innerHTML = step.status;
  $("gv-inspector").innerHTML = inspectorHtml(step);
  markSelected();
  showTape(step.node);
  $("gv-scrub").value = String(k);
  $("gv-step").textContent = k + " / " + LAST;
  $("gv-message").textContent = message || "";
  const root = document.body;
  root.dataset.step = String(k);
  root.dataset.phase = step.phase;
  root.dataset.node = step.node === null ? "" : step.node;
  centre($("gv-graph"), document.querySelector("#gv-graph g.node.current"));
  if (k === LAST) stop();
}

// scroll `pane` alone (not the page, as scrollIntoView would on a narrow window) so that
// `element` sits in its middle, with the edges around it in view; across too unless it is
// a tape row, whose first column (the node's name) must stay in view
function centre(pane, element, across = true) {
  if (!element) return;
  const outer = pane.getBoundingClientRect(), inner = element.getBoundingClientRect();
  if (across) pane.scrollLeft += inner.left + inner.width / 2 - (outer.left + outer.width / 2);
  pane.scrollTop += inner.top + inner.height / 2 - (outer.top + outer.height / 2);
}

const escape = (text) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function showTape(current) {
  const tape = DATA.tape;
  const head = "<tr>" + tape.header.map((h) => "<th>" + escape(h) + "</th>").join("") + "</tr>";
  const rows = tape.rows.map((row) => {
    const cells = row.cells.map((text, i) => {
      const known = row.from[i] !== null && k >= row.from[i];
      const look = known ? (row.bad[i] ? "number bad" : "number") : "number pending";
      return '<td class="' + look + '">' + (known ? escape(text) : "·") + "</td>";
    });
    const look = row.node === current ? ' class="current"' : (row.id === selected ? ' class="selected"' : "");
    return "<tr" + look + ' data-node="' + row.id + '"><td>' + escape(row.node) + "</td><td>"
      + escape(row.definition) + "</td>"
      + cells.join("") + "</tr>";
  });
  $("gv-tape").innerHTML = '<table><caption>tape: the trace table (· = not computed yet)</caption>'
    + head + rows.join("") + "</table>";
  centre($("gv-tape"), document.querySelector("#gv-tape tr.current"), false);
}

function stop() {
  if (timer !== null) { clearInterval(timer); timer = null; }
  $("gv-play").textContent = "play";
}

function play() {
  if (timer !== null) { stop(); return; }
  if (k === LAST) show(0);
  $("gv-play").textContent = "pause";
  timer = setInterval(() => show(k + 1), 700);
}

function jump(name) {
  const target = DATA.jumps[name][k];
  if (Array.isArray(target)) show(target[0], target[1]); else show(target);
}

const ACTIONS = {
  ArrowRight: () => show(k + 1), n: () => show(k + 1),
  ArrowLeft: () => show(k - 1), p: () => show(k - 1),
  Home: () => show(0), g: () => show(0), End: () => show(LAST), G: () => show(LAST),
  " ": play, m: () => jump("mode_next"), M: () => jump("mode_prev"),
  w: () => jump("input"), o: () => jump("output"), f: fit, Escape: () => select(null),
};

function fit() {
  $("gv-graph").classList.toggle("fit");
  centre($("gv-graph"), document.querySelector("#gv-graph g.node.current"));
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const action = ACTIONS[event.key];
  if (!action) return;
  event.preventDefault();
  action();
});
$("gv-first").onclick = () => show(0);
$("gv-prev").onclick = () => show(k - 1);
$("gv-next").onclick = () => show(k + 1);
$("gv-last").onclick = () => show(LAST);
$("gv-play").onclick = play;
$("gv-mode").onclick = () => jump("mode_next");
$("gv-input").onclick = () => jump("input");
$("gv-output").onclick = () => jump("output");
$("gv-fit").onclick = fit;
$("gv-graph").onclick = (event) => {
  const box = event.target.closest("g.node");
  if (box) select(DATA.select ? DATA.select.keys[box.id] : undefined);
};
$("gv-tape").onclick = (event) => {
  const row = event.target.closest("tr[data-node]");
  if (row) select(Number(row.dataset.node));
};
$("gv-scrub").max = String(LAST);
$("gv-scrub").oninput = (event) => { stop(); show(Number(event.target.value)); };
// buttons keep no focus, so space and the arrows always step instead of pressing a button
document.querySelectorAll("#gv-controls button").forEach((b) => b.addEventListener("mouseup", () => b.blur()));
show(0);
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<pre id="gv-status"></pre>
<div id="gv-controls">
<button id="gv-first" title="first step (home, g)">◀◀</button>
<button id="gv-prev" title="previous step (←, p)">◀</button>
<button id="gv-next" title="next step (→, n)">▶</button>
<button id="gv-last" title="last step (end, G)">▶▶</button>
<button id="gv-play" title="play / pause (space)">play</button>
<button id="gv-mode" title="next mode: values → tangents → adjoints (m; M goes back)">mode</button>
<button id="gv-input" title="another input's tangent pass (w)">input</button>
<button id="gv-output" title="another output's adjoint pass (o)">output</button>
<button id="gv-fit" title="fit the graph to its pane, and back (f)">fit</button>
<input id="gv-scrub" type="range" min="0" value="0" step="1" aria-label="step">
<span id="gv-step"></span>
</div>
<div id="gv-message"></div>
</header>
<main>
<div id="gv-graph"></div>
<div id="gv-side">
<pre id="gv-inspector"></pre>
<div id="gv-tape"></div>
</div>
</main>
<script type="application/json" id="gv-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""


def page_html(title: str, data_json: str) -> str:
    """The whole page: `title` already escaped, `data_json` safe inside a <script> element."""
    return PAGE.format(title=title, style=STYLE, data=data_json, script=SCRIPT)
