// burst web UI: live updates over server-sent events. Every page works
// without this script; it only saves reloads. The HTML it inserts was
// rendered (and escaped) by the master.
(function () {
  "use strict";

  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  // Builds page: replace or insert the rows the master sends.
  function builds() {
    var table = document.getElementById("builds");
    var rows = document.getElementById("build-rows");
    if (!table || !rows || !table.dataset.events || !window.EventSource) return;
    var max = Math.max(rows.children.length, 100);
    var es = new EventSource(table.dataset.events);
    es.addEventListener("build", function (e) {
      var b = JSON.parse(e.data);
      var row = fragment(b.html);
      if (!row) return;
      var old = document.getElementById("build-" + b.id);
      if (old) {
        old.replaceWith(row);
      } else {
        var before = null;
        for (var i = 0; i < rows.children.length; i++) {
          if (Number(rows.children[i].dataset.id) < b.id) { before = rows.children[i]; break; }
        }
        rows.insertBefore(row, before);
        while (rows.children.length > max) rows.lastElementChild.remove();
      }
      var none = document.getElementById("no-builds");
      if (none) none.remove();
    });
  }

  // Log page: append the lines that follow; stop when the step ends.
  function log() {
    var pre = document.getElementById("log");
    if (!pre || !pre.dataset.events || !window.EventSource) return;
    var es = new EventSource(pre.dataset.events);
    es.addEventListener("lines", function (e) {
      var bottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      var html = e.data;
      if (html.slice(-1) !== "\n") html += "\n";
      pre.insertAdjacentHTML("beforeend", html);
      pre.dataset.end = e.lastEventId;
      if (bottom) window.scrollTo(0, document.body.scrollHeight);
    });
    es.addEventListener("end", function (e) {
      es.close();
      pre.dataset.state = e.data;
      delete pre.dataset.events;
      var s = document.getElementById("step-state");
      if (s) { s.textContent = e.data; s.className = "state s-" + e.data; }
    });
  }

  // Build page: swap its two sections for the ones the master renders as
  // the build moves on (state, attempts, steps, buttons), in place.
  function build() {
    var section = document.getElementById("build");
    if (!section || !section.dataset.events || !window.EventSource) return;
    var es = new EventSource(section.dataset.events);
    es.addEventListener("build", function (e) {
      var b = JSON.parse(e.data);
      var fresh = fragment(b.build);
      var old = document.getElementById("build");
      if (fresh && old) old.replaceWith(fresh);
      fresh = fragment(b.attempts);
      old = document.getElementById("attempts");
      if (fresh && old) old.replaceWith(fresh);
    });
    es.addEventListener("end", function () { es.close(); });
  }

  document.addEventListener("DOMContentLoaded", function () { builds(); build(); log(); });
})();
