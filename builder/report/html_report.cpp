#include "report/html_report.hpp"

#include <string_view>

namespace bi {

std::string json_for_script_element(const nlohmann::json& value) {
  // dump() escapes control characters; "<", ">" and "&" are escaped too so that no
  // "</script>" or "<!--" in a package name or a note can end the element early, and the
  // line separators JavaScript once treated as newlines never appear raw.
  const std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (text.compare(i, 3, "\xE2\x80\xA8") == 0 || text.compare(i, 3, "\xE2\x80\xA9") == 0) {
      out += text[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// The page. Everything is drawn by the script below from the embedded manifest, with
// textContent only (never innerHTML), so nothing in a manifest can inject markup.
constexpr std::string_view k_head = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>build-image report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; color: #1b1f24; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 2px 8px; border-bottom: 1px solid #eaeef2; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; } code, .key { font-family: ui-monospace, monospace; font-size: 12px; }
.bar { fill: #0969da; } .bar.cached { fill: #8c959f; } .bar.remote { fill: #8250df; }
.legend span { display: inline-block; width: 1em; height: .8em; margin: 0 .3em 0 1em; }
.sizebar { background: #0969da; height: .7em; display: inline-block; } .missing { color: #6e7781; font-style: italic; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; } dt { font-weight: 600; } dd { margin: 0; }
</style>
</head>
<body>
<h1 id="title">build-image report</h1>
<dl id="summary"></dl>
<h2>Phases</h2>
<p class="legend">built here<span style="background:#0969da"></span> from the local cache<span style="background:#8c959f"></span> from the remote cache<span style="background:#8250df"></span></p>
<svg id="timeline" role="img" aria-label="phase timeline" width="100%"></svg>
<table id="phases"><thead><tr><th>phase</th><th class="num">start (s)</th><th class="num">seconds</th><th>source</th><th>note</th></tr></thead><tbody></tbody></table>
<h2>Size by package</h2>
<table id="packages"><thead><tr><th>package</th><th>version</th><th class="num">installed size</th><th></th></tr></thead><tbody></tbody></table>
<h2>Size by top-level folder</h2>
<table id="folders"><thead><tr><th>folder</th><th class="num">size</th><th></th></tr></thead><tbody></tbody></table>
<h2>Layers</h2>
<table id="layers"><thead><tr><th>layer</th><th>key</th></tr></thead><tbody></tbody></table>
<h2>Inputs</h2>
<table id="inputs"><thead><tr><th>input</th><th>digest</th></tr></thead><tbody></tbody></table>
<h2>Registrations</h2>
<table id="registrations"><thead><tr><th>cloud</th><th>region</th><th>image</th><th>details</th></tr></thead><tbody></tbody></table>
<script id="manifest" type="application/json">)HTML";

constexpr std::string_view k_tail = R"HTML(</script>
<script>
"use strict";
(function () {
  const m = JSON.parse(document.getElementById("manifest").textContent);
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
  const row = (tableId, cells) => {
    const tr = document.createElement("tr");
    for (const c of cells) { tr.appendChild(c instanceof Node ? c : el("td", c)); }
    document.querySelector("#" + tableId + " tbody").appendChild(tr);
    return tr;
  };
  const none = (tableId, text, span) => { const td = el("td", text, "missing"); td.colSpan = span; row(tableId, [td]); };
  const human = (b) => { const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; b = Number(b); while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; } return (i ? b.toFixed(1) : b) + " " + u[i]; };
  const num = (v) => el("td", v, "num");

  document.getElementById("title").textContent = "build-image report: " + (m.name || "?");
  const summary = document.getElementById("summary");
  for (const [k, v] of [["cartridge", m.cartridge], ["mode", m.mode], ["format", m.format], ["image file", m.file],
      ["image size", m.file_size !== undefined ? human(m.file_size) + " (virtual " + human(m.virtual_size) + ")" : undefined],
      ["build time", m.build_seconds !== undefined ? Number(m.build_seconds).toFixed(1) + " s" : undefined],
      ["appliance launches", m.appliance_launches], ["created", m.created], ["tool version", m.tool_version], ["sha256", m.sha256]]) {
    if (v === undefined || v === null) continue;
    summary.appendChild(el("dt", k)); summary.appendChild(el("dd", v, k === "sha256" ? "key" : ""));
  }

  // Phases: the manifest records each phase's duration (and its start where known); the
  // source comes from the phase note ("cached ...", "remote ...", "built ...").
  const phases = Array.isArray(m.phases) ? m.phases : [];
  let t = 0;
  const spans = phases.map((p) => {
    const start = typeof p.start === "number" ? p.start : t;
    const secs = Number(p.seconds) || 0;
    t = Math.max(t, start + secs);
    const note = String(p.note || "");
    const source = /^cached/.test(note) ? "cached" : /^remote/.test(note) ? "remote" : "built";
    return { name: String(p.name), start, secs, note, source };
  });
  const svg = document.getElementById("timeline");
  const ns = "http://www.w3.org/2000/svg";
  const width = 900, label = 110, barH = 18;
  svg.setAttribute("viewBox", "0 0 " + width + " " + (spans.length * (barH + 6) + 10));
  const scale = t > 0 ? (width - label - 70) / t : 0;
  spans.forEach((s, i) => {
    const y = 5 + i * (barH + 6);
    const name = document.createElementNS(ns, "text");
    name.setAttribute("x", 0); name.setAttribute("y", y + 13); name.textContent = s.name; svg.appendChild(name);
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("class", "bar " + s.source); r.setAttribute("data-phase", s.name);
    r.setAttribute("x", label + s.start * scale); r.setAttribute("y", y);
    r.setAttribute("width", Math.max(1, s.secs * scale)); r.setAttribute("height", barH);
    const tip = document.createElementNS(ns, "title"); tip.textContent = s.name + ": " + s.secs.toFixed(1) + " s, " + s.source; r.appendChild(tip);
    svg.appendChild(r);
    const secs = document.createElementNS(ns, "text");
    secs.setAttribute("x", label + (s.start + s.secs) * scale + 4); secs.setAttribute("y", y + 13);
    secs.textContent = s.secs.toFixed(1) + " s"; svg.appendChild(secs);
    row("phases", [el("td", s.name), num(s.start.toFixed(1)), num(s.secs.toFixed(1)), el("td", s.source), el("td", s.note)]);
  });
  if (!spans.length) none("phases", "this manifest records no phases (an up-to-date image keeps its first build's manifest)", 5);

  // Packages, largest first; Installed-Size is in KiB (dpkg).
  const pkgs = (Array.isArray(m.packages) ? m.packages : []).map((p) => ({ name: String(p.name), version: String(p.version || ""), kib: Number(p.installed_size_kib) }));
  const sized = pkgs.some((p) => !Number.isNaN(p.kib));
  if (sized) pkgs.sort((a, b) => (b.kib || 0) - (a.kib || 0) || a.name.localeCompare(b.name));
  const maxKib = sized ? Math.max(...pkgs.map((p) => p.kib || 0), 1) : 1;
  for (const p of pkgs) {
    const bar = el("span", undefined, "sizebar"); bar.style.width = (sized ? Math.round(200 * (p.kib || 0) / maxKib) : 0) + "px";
    const cell = el("td"); cell.appendChild(bar);
    row("packages", [el("td", p.name), el("td", p.version, "key"), num(sized ? human((p.kib || 0) * 1024) : "?"), cell]);
  }
  if (!pkgs.length) none("packages", "this manifest lists no packages", 4);
  else if (!sized) none("packages", "this manifest has no package sizes (made by an older build-image)", 4);

  const folders = Object.entries(m.tree_sizes || {}).map(([k, v]) => [k, Number(v)]).sort((a, b) => b[1] - a[1]);
  const maxFolder = Math.max(...folders.map((f) => f[1]), 1);
  for (const [path, bytes] of folders) {
    const bar = el("span", undefined, "sizebar"); bar.style.width = Math.round(200 * bytes / maxFolder) + "px";
    const cell = el("td"); cell.appendChild(bar);
    row("folders", [el("td", path, "key"), num(human(bytes)), cell]);
  }
  if (!folders.length) none("folders", "this manifest has no folder sizes (made by an older build-image)", 3);

  const layers = m.layers && typeof m.layers === "object" ? Object.entries(m.layers) : [];
  for (const [kind, key] of layers) row("layers", [el("td", kind), el("td", typeof key === "object" ? JSON.stringify(key) : key, "key")]);
  if (!layers.length) none("layers", "no layers recorded", 2);

  const plan = m.plan || {};
  const pl = plan.layers || {};
  const inputs = [["all inputs (image key)", m.inputs_key], ["mirror indexes (InRelease)", pl.base && pl.base.mirror_index],
    ["base image", pl.base && pl.base.image_sha256], ["Puppet tree", pl.system && pl.system.puppet_tree_sha256],
    ["cartridge-agent package", pl.system && pl.system.agent_deb_sha256]];
  for (const o of Array.isArray(plan.overlay) ? plan.overlay : []) inputs.push([String(o.dest), o.sha256]);
  for (const [what, digest] of inputs) { if (digest) row("inputs", [el("td", what), el("td", digest, "key")]); }

  let regs = 0;
  for (const [cloud, byRegion] of Object.entries(m.registrations || {})) {
    for (const [region, r] of Object.entries(byRegion || {})) {
      const details = Object.entries(r || {}).filter(([k]) => k !== "image_id").map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(", ");
      row("registrations", [el("td", cloud), el("td", region), el("td", (r && r.image_id) || "", "key"), el("td", details)]);
      regs++;
    }
  }
  if (!regs) none("registrations", "not registered yet (build-image register)", 4);
  document.body.dataset.rendered = "ok";
})();
</script>
</body>
</html>
)HTML";

} // namespace

std::string render_html_report(const nlohmann::json& manifest) {
  std::string page;
  const std::string data = json_for_script_element(manifest);
  page.reserve(k_head.size() + data.size() + k_tail.size());
  page.append(k_head);
  page.append(data);
  page.append(k_tail);
  return page;
}

} // namespace bi
