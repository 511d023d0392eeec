// Router-R1 Studio page behaviour that needs no server round trip (loaded once through launch(head=...)).
// 1. A click on a decomposition-graph node (anything with data-step inside an .rs-graph that names a
//    data-target) shows that step
//    in the step list next to it: scrolls to the message carrying the anchor rs-<target>-step-<n> and
//    outlines it for two seconds.
// 2. Lesson mode: ← and → step back and forward (they click the replay's Back / Forward buttons)
//    when the lesson checkbox is on and the focus is not in a text field.
// 3. Charts fit their box: a plotly chart drawn while its tab was hidden has no width to measure and takes
//    plotly's default (700 px) — wider than a 480 px column. Each chart is watched; when its box changes size
//    (its tab shown, the window resized, a column settled) it is redrawn to that size.
// 4. Bridges from far back: a graph row with data-arcs ("from-to-colour" of each bridge whose reply is not the
//    one just before its sub-question) gets an arc per bridge, from the bottom of that reply, along its own lane
//    below the cards, up the gap before the sub-question and into its left edge. Redrawn when the row changes
//    size; a stacked row (sweep columns, narrow windows) gets none: its labels name the source step.
// 5. α typed outside [0, 1] in the slider's box: the slider keeps it within (5 runs as 1), so a line under it says
//    so instead of the box changing without a word; read in the capture phase, before the slider clamps it.
(function () {
  var watched = new WeakSet();
  var sizes = new ResizeObserver(function (entries) {
    entries.forEach(function (entry) {
      var el = entry.target;
      if (entry.contentRect.width > 0 && window.Plotly && el._fullLayout &&
          Math.abs(el._fullLayout.width - entry.contentRect.width) > 1) {
        window.Plotly.Plots.resize(el);
      }
    });
  });
  function watch() {
    document.querySelectorAll(".js-plotly-plot").forEach(function (el) {
      if (!watched.has(el)) { watched.add(el); sizes.observe(el); }
    });
  }
  new MutationObserver(watch).observe(document.documentElement, {childList: true, subtree: true});
  watch();
})();
(function () {
  var NS = "http://www.w3.org/2000/svg";
  var rows = new WeakSet();
  function draw(row) {
    var old = row.querySelector(":scope > svg.rs-g-arcs");
    if (old) old.remove();
    var spec = (row.getAttribute("data-arcs") || "").trim();
    var box = row.getBoundingClientRect();
    if (!spec || getComputedStyle(row).flexDirection === "column") return true;  // nothing to draw
    if (!box.width) return false;  // hidden: drawn once shown
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("class", "rs-g-arcs");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("width", row.scrollWidth);
    svg.setAttribute("height", row.scrollHeight);
    var ox = row.scrollLeft - box.left, oy = row.scrollTop - box.top;
    var bottom = 0;
    row.querySelectorAll(":scope > .rs-g-col").forEach(function (c) {
      bottom = Math.max(bottom, c.getBoundingClientRect().bottom + oy);
    });
    spec.split(/\s+/).forEach(function (arc, lane) {
      var p = arc.split("-");
      var src = row.querySelector('.rs-g-reply[data-step="' + Number(p[0]) + '"]');
      var dst = row.querySelector('.rs-g-sub[data-step="' + Number(p[1]) + '"]');
      if (!src || !dst) return;
      var s = src.getBoundingClientRect(), d = dst.getBoundingClientRect();
      var x0 = s.left + ox + s.width / 2, y0 = s.bottom + oy;
      var y = bottom + 8 + 10 * lane, gx = d.left + ox - 8 - 4 * lane, x1 = d.left + ox, y1 = d.top + oy + d.height / 2;
      var path = document.createElementNS(NS, "path");
      path.setAttribute("d", "M" + x0 + " " + y0 + " V" + y + " H" + gx + " V" + y1 + " H" + (x1 - 1) +
                        " M" + (x1 - 7) + " " + (y1 - 5) + " L" + (x1 - 1) + " " + y1 + " L" + (x1 - 7) + " " + (y1 + 5));
      path.setAttribute("class", "rs-g-arc rs-g-arc" + Number(p[2]));
      svg.appendChild(path);
    });
    row.appendChild(svg);
    return true;
  }
  // what an arc depends on: the row's arcs and its cards' places. The page updates a graph in place (a live run
  // adds hops to the same row), so every change of the document is checked against it; drawing changes nothing
  // it depends on, so the check ends there.
  function signature(row) {
    var parts = [row.getAttribute("data-arcs"), row.scrollWidth, row.scrollHeight];
    row.querySelectorAll(".rs-g-reply, .rs-g-sub").forEach(function (n) {
      var r = n.getBoundingClientRect();
      parts.push(Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height));
    });
    return parts.join(",");
  }
  function update(row) {
    var sig = signature(row);
    if (row._rsArcs === sig) return;
    row._rsArcs = draw(row) ? sig : null;  // not drawn while hidden: tried again at the next change
  }
  var sizes = new ResizeObserver(function (entries) { entries.forEach(function (e) { update(e.target); }); });
  var pending = false;
  function watch() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      document.querySelectorAll(".rs-g-row[data-arcs]").forEach(function (row) {
        if (!rows.has(row)) { rows.add(row); sizes.observe(row); }
        update(row);
      });
      document.querySelectorAll(".rs-g-row:not([data-arcs]) > svg.rs-g-arcs").forEach(function (svg) { svg.remove(); });
    });
  }
  new MutationObserver(watch).observe(document.documentElement, {childList: true, subtree: true, attributes: true,
                                                                  attributeFilter: ["data-arcs"]});
  watch();
})();
(function () {
  function select(target, step) {
    var anchor = document.getElementById("rs-" + target + "-step-" + step);
    if (!anchor) return false;
    var msg = anchor.closest(".message-row") || anchor.closest(".message") || anchor.parentElement;
    msg.scrollIntoView({behavior: "smooth", block: "center"});
    document.querySelectorAll(".rs-selected").forEach(function (e) { e.classList.remove("rs-selected"); });
    msg.classList.add("rs-selected");
    window.setTimeout(function () { msg.classList.remove("rs-selected"); }, 2000);
    return true;
  }
  document.addEventListener("click", function (e) {
    var node = e.target.closest && e.target.closest(".rs-graph [data-step]");
    if (!node || e.target.closest("summary")) return;
    var target = node.closest(".rs-graph").getAttribute("data-target");
    if (target) select(target, node.getAttribute("data-step"));  // a graph with no step list beside it: nothing
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    var lesson = document.querySelector("#rs-lesson input[type=checkbox]");
    if (!lesson || !lesson.checked) return;
    var btn = document.getElementById(e.key === "ArrowLeft" ? "rs-prev" : "rs-next");
    if (btn) { e.preventDefault(); btn.click(); }
  });
  window.rsSelectStep = select;
  function alphaNote(e) {
    var box = e.target;
    if (!box || !box.closest || !box.closest("#rs-alpha") || box.type !== "number") return;
    var block = box.closest("#rs-alpha");
    var note = document.getElementById("rs-alpha-note");
    var typed = box.value.trim() === "" ? NaN : Number(box.value);
    var out = !isNaN(typed) && (typed < 0 || typed > 1);
    if (!out) { if (note && e.type === "input") note.remove(); return; }  // the slider's own clamp is a change
    if (!note) {
      note = document.createElement("div");
      note.id = "rs-alpha-note";
      note.className = "rs-bad rs-alpha-note";
      note.setAttribute("role", "status");
      block.appendChild(note);
    }
    note.textContent = "α is between 0 and 1: " + box.value + " runs as " + (typed < 0 ? "0" : "1") + ".";
  }
  document.addEventListener("input", alphaNote, true);
  document.addEventListener("change", alphaNote, true);
})();
