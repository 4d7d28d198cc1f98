"""The page's style sheet and script, written next to index.html as style.css and page.js.

The script is progressive enhancement only: everything is there and works without it. It
adds the filter box, keys (/ filter, j and k next and previous person, n and p next and
previous page), a copy button on each command, and "Select faces", which fills the face
ids of the faces clicked into the split and remove-face commands."""

CSS = """
:root{--bg:#f4f5f7;--card:#fff;--ink:#1d2129;--muted:#6b7280;--line:#e4e7ec;
--chip:#eef1f5;--accent:#3b5bdb;--ph:#c9ced6;--code:#f6f7f9;--sel:#f59f00;
--t:THUMBpx;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#14161a;--card:#1d2026;--ink:#e8eaee;
--muted:#9aa3af;--line:#2c3038;--chip:#262a31;--accent:#8da2fb;--ph:#3a3f48;--code:#16181d}}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--accent)}
code,.folder,.anon,.pid{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.top{padding:24px 32px 18px;background:var(--card);border-bottom:1px solid var(--line)}
h1{margin:0 0 12px;font-size:26px;font-weight:650;letter-spacing:-.01em}
.stats{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 12px;padding:0;list-style:none}
.stats li{background:var(--chip);border-radius:999px;padding:4px 12px;font-size:14px;
color:var(--muted)}
.stats b{color:var(--ink);font-weight:650}
.stats a{color:inherit;text-decoration:none}
.stats a:hover{text-decoration:underline}
.params{display:flex;flex-wrap:wrap;gap:4px 18px;margin:0;font-size:13px;color:var(--muted)}
.params div{display:flex;gap:6px}
.params dt::after{content:":"}
.params dd{margin:0;color:var(--ink);font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
.crumbs{display:flex;flex-wrap:wrap;gap:6px 18px;padding:14px 32px;background:var(--card);
border-bottom:1px solid var(--line);font-size:14px}
main,.overview,.suggest{margin:20px 32px}
main{display:flex;flex-direction:column;gap:18px}
.overview,.suggest,.person{background:var(--card);border:1px solid var(--line);
border-radius:14px;padding:16px 18px 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.bar,.head{display:flex;align-items:baseline;flex-wrap:wrap;gap:4px 14px;margin-bottom:12px}
h2{margin:0;font-size:18px;font-weight:620;overflow-wrap:anywhere}
h2:focus{outline:none}
h3{margin:18px 0 10px;font-size:14px;font-weight:600;color:var(--muted)}
#filter{margin-left:auto;min-width:0;width:16em;max-width:100%;padding:6px 10px;
border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--ink);
font:inherit}
.anon{font-weight:500;color:var(--muted)}
.pid{font-size:12px;color:var(--muted);background:var(--chip);border-radius:6px;
padding:1px 7px}
.meta{margin:0;font-size:13px;color:var(--muted)}
.folder{overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(calc(var(--t) + 8px),1fr));
gap:12px;margin:0;padding:0;list-style:none}
.cards.small{grid-template-columns:repeat(auto-fill,minmax(calc(var(--t)*.75 + 12px),1fr));
gap:10px}
.card a,.side{display:flex;flex-direction:column;gap:2px;height:100%;padding:6px 6px 8px;
border-radius:12px;color:inherit;text-decoration:none;min-width:0}
.card a:hover,.card a:focus-visible,.side:hover,.side:focus-visible{background:var(--chip)}
.card img,.card .ph,.side img,.side .ph{display:flex;width:100%;height:auto;
aspect-ratio:1;object-fit:cover;border-radius:10px;background:var(--ph);margin-bottom:4px}
.nm{font-weight:600;font-size:14px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.nm.anon{font-size:13px}
.ct{font-size:12px;color:var(--muted)}
.pairs{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(360px,100%),1fr));gap:10px;
margin:0;padding:0;list-style:none}
.pair{display:grid;grid-template-columns:64px 64px minmax(0,1fr);align-items:center;gap:8px;
border:1px solid var(--line);border-radius:12px;padding:8px}
.pair .side{padding:0}
.pair .side img,.pair .side .ph{margin:0;border-radius:8px}
.why{display:flex;flex-direction:column;gap:2px;min-width:0;font-size:12px;
color:var(--muted)}
.who{font-size:13px;color:var(--ink);overflow-wrap:anywhere}
.who a{color:inherit;font-weight:600;text-decoration:none}
.who a:hover{text-decoration:underline}
.why code,.maybe code{color:var(--ink);overflow-wrap:anywhere}
.why code{font-size:11.5px}
details{margin-top:10px}
summary{cursor:pointer;color:var(--accent);font-size:14px;margin-bottom:10px}
.cmds{margin:0 0 12px;padding:8px 12px;list-style:none;background:var(--code);
border:1px solid var(--line);border-radius:10px;font-size:12.5px}
.cmds li{display:flex;align-items:center;gap:8px;min-height:24px}
.cmds code{overflow-wrap:anywhere}
.cmds button{margin-left:auto;font:inherit;font-size:11px;padding:1px 8px;cursor:pointer;
border:1px solid var(--line);border-radius:6px;background:var(--card);color:var(--muted)}
.ids{color:var(--accent)}
.maybe{margin:0 0 12px;font-size:13px;color:var(--muted)}
.maybe ul{margin:2px 0 0;padding:0;list-style:none}
.maybe li{display:flex;flex-wrap:wrap;align-items:baseline;gap:2px 10px}
.maybe code{font-size:12px}
.tools{margin:-4px 0 10px}
.tools button{font:inherit;font-size:13px;padding:3px 12px;cursor:pointer;border-radius:8px;
border:1px solid var(--line);background:var(--card);color:var(--ink)}
.selecting .tools button{background:var(--sel);border-color:var(--sel);color:#111}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(var(--t),1fr));gap:8px}
.f{position:relative;display:block;aspect-ratio:1;border-radius:10px;overflow:hidden;
background:var(--ph);outline-offset:2px;transition:transform .12s ease,box-shadow .12s ease;
color:var(--muted);text-decoration:none}
.f:hover,.f:focus-visible{transform:translateY(-2px);box-shadow:0 6px 16px rgba(16,24,40,.18)}
.f:focus-visible{outline:2px solid var(--accent)}
.f img{display:block;width:100%;height:100%;object-fit:cover}
.f b{position:absolute;left:4px;bottom:4px;padding:0 5px;border-radius:5px;font-size:11px;
font-weight:600;line-height:17px;color:#fff;background:rgba(0,0,0,.55);
font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
.f.sel{outline:3px solid var(--sel);outline-offset:-3px}
.f.sel b{background:var(--sel);color:#111}
.ph{display:flex;width:100%;height:100%;align-items:center;justify-content:center;
font-size:12px;color:#fff;background:var(--ph)}
.more{display:flex;flex-direction:column;aspect-ratio:1;align-items:center;
justify-content:center;border:1px dashed var(--line);border-radius:10px;color:var(--muted);
font-size:14px;text-align:center}
.more small{font-size:11px}
.unknown{background:transparent;border-style:dashed}
footer{padding:0 32px 28px;font-size:12px;color:var(--muted)}
@media (max-width:600px){.top{padding:18px 14px 14px}.crumbs{padding:12px 14px}
main,.overview,.suggest{margin:12px 8px}main{gap:12px}
.overview,.suggest,.person{padding:12px 10px 12px;border-radius:12px}
.grid{grid-template-columns:repeat(auto-fill,minmax(calc(var(--t)*.7),1fr));gap:5px}
.cards{grid-template-columns:repeat(auto-fill,minmax(calc(var(--t)*.8),1fr));gap:6px}
#filter{width:100%}footer{padding:0 14px 20px}}
"""

JS = """(function () {
  "use strict";
  var doc = document, filter = doc.getElementById("filter");
  var named = [].slice.call(doc.querySelectorAll("[data-name]"));
  if (filter) {
    filter.hidden = false;
    filter.addEventListener("input", function () {
      var q = filter.value.trim().toLowerCase();
      named.forEach(function (el) {
        el.hidden = q !== "" && el.getAttribute("data-name").indexOf(q) < 0;
      });
    });
  }
  function visible(sel) {
    return [].slice.call(doc.querySelectorAll(sel)).filter(function (el) {
      return !el.hidden;
    });
  }
  function step(d) {
    var secs = visible("section.person"), cards = visible(".card a");
    if (secs.length > 1 || !cards.length) {
      var y = window.scrollY + 8, i = 0;
      while (i < secs.length && secs[i].offsetTop <= y) i++;
      var to = secs[Math.max(0, Math.min(secs.length - 1, d > 0 ? i : i - 2))];
      if (to) { to.scrollIntoView(); to.querySelector("h2").focus({preventScroll: true}); }
    } else {
      var at = cards.indexOf(doc.activeElement);
      var next = cards[Math.max(0, Math.min(cards.length - 1, at + d))];
      if (next) next.focus();
    }
  }
  doc.addEventListener("keydown", function (ev) {
    var t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey || /^(INPUT|TEXTAREA)$/.test(t.tagName)) return;
    var rel = {n: "next", p: "prev"}[ev.key];
    if (ev.key === "/" && filter) { ev.preventDefault(); filter.focus(); }
    else if (ev.key === "j" || ev.key === "k") step(ev.key === "j" ? 1 : -1);
    else if (rel && doc.querySelector("a[rel=" + rel + "]")) {
      doc.querySelector("a[rel=" + rel + "]").click();
    }
  });
  doc.querySelectorAll(".cmds li").forEach(function (li) {
    var b = doc.createElement("button");
    b.type = "button"; b.textContent = "copy";
    b.addEventListener("click", function () {
      var text = li.querySelector("code").textContent;
      var done = function () { b.textContent = "copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, function () {});
      var r = doc.createRange(); r.selectNodeContents(li.querySelector("code"));
      var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
    });
    li.appendChild(b);
  });
  doc.querySelectorAll("section.person").forEach(function (sec) {
    if (!sec.querySelector(".ids")) return;
    var bar = doc.createElement("div"), b = doc.createElement("button");
    bar.className = "tools"; b.type = "button"; b.textContent = "Select faces";
    b.setAttribute("aria-pressed", "false");
    bar.appendChild(b); sec.insertBefore(bar, sec.querySelector(".grid"));
    function update() {
      var ids = [].map.call(sec.querySelectorAll(".f.sel"), function (a) {
        return a.getAttribute("data-f");
      }).join(" ") || "FACE_ID...";
      sec.querySelectorAll(".ids").forEach(function (s) { s.textContent = ids; });
    }
    b.addEventListener("click", function () {
      var on = sec.classList.toggle("selecting");
      b.setAttribute("aria-pressed", String(on));
      b.textContent = on ? "Selecting: click faces, then copy a command" : "Select faces";
    });
    sec.querySelector(".grid").addEventListener("click", function (ev) {
      var a = ev.target.closest(".f");
      if (!a || !sec.classList.contains("selecting")) return;
      ev.preventDefault(); a.classList.toggle("sel"); update();
    });
  });
})();
"""


def css(thumb_size: int) -> str:
    return CSS.replace("THUMB", str(thumb_size))
