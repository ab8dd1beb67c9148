(function () {
  "use strict";
  var d = document;
  var rows = Array.prototype.slice.call(d.querySelectorAll("details.sc"));
  var f = d.getElementById("filters");
  function each(sel, fn) { Array.prototype.forEach.call(d.querySelectorAll(sel), fn); }
  if (f) {
    f.hidden = false;
    var boxes = Array.prototype.slice.call(f.querySelectorAll("input[type=checkbox]"));
    var tag = d.getElementById("f-tag"), q = d.getElementById("f-q"), count = d.getElementById("f-count");
    var apply = function () {
      var on = {}, n = 0, i, j, r, ok, s;
      boxes.forEach(function (b) { on[b.value] = b.checked; });
      var t = tag.value ? "|" + tag.value + "|" : "";
      var terms = q.value.toLowerCase().split(/\s+/).filter(Boolean);
      for (i = 0; i < rows.length; i++) {
        r = rows[i];
        ok = on[r.getAttribute("data-st")] === true && (!t || r.getAttribute("data-tags").indexOf(t) >= 0);
        if (ok && terms.length) {
          s = r.getAttribute("data-q");
          for (j = 0; j < terms.length && ok; j++) { ok = s.indexOf(terms[j]) >= 0; }
        }
        r.hidden = !ok;
        if (ok) { n++; }
      }
      count.textContent = f.getAttribute("data-shown").replace("{n}", n).replace("{m}", rows.length);
    };
    f.addEventListener("input", apply);
    f.addEventListener("change", apply);
    d.getElementById("f-open").addEventListener("click", function () {
      rows.forEach(function (r) { if (!r.hidden) { r.open = true; } });
    });
    d.getElementById("f-close").addEventListener("click", function () {
      rows.forEach(function (r) { r.open = false; });
    });
    apply();
  }
  function reveal() {
    var id = location.hash.slice(1), el;
    try { id = decodeURIComponent(id); } catch (e) { /* keep it raw */ }
    el = id && d.getElementById(id);
    if (!el) { return; }
    for (var p = el; p; p = p.parentElement) {
      if (p.tagName === "DETAILS") { p.open = true; p.hidden = false; }
    }
    el.scrollIntoView();
  }
  window.addEventListener("hashchange", reveal);
  d.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[href^='#']");
    if (a && a.getAttribute("href") === location.hash) { setTimeout(reveal, 0); }
  });
  reveal();
  var opened = [];
  window.addEventListener("beforeprint", function () {
    opened = [];
    each("details", function (e) { if (!e.open) { opened.push(e); e.open = true; } });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (e) { e.open = false; });
    opened = [];
  });
})();
