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
})();
