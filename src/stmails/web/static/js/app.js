/* stmails admin UI: progressive enhancement only. Every page works without this file.
 * Loaded with `defer`; no inline script exists anywhere (Content-Security-Policy). */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* htmx requests carry the CSRF token in the header the server checks. */
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  /* The navigation menu is a <details> so that it works without script on a phone; on a wide
   * screen it is simply open. */
  function syncMenu() {
    var menu = document.querySelector("details.menu");
    if (!menu) { return; }
    var wide = window.matchMedia("(min-width: 60rem)").matches;
    if (wide) { menu.setAttribute("open", ""); }
    menu.classList.toggle("menu-wide", wide);
  }

  function pick(value, path) {
    var parts = path ? path.split(".") : [];
    for (var i = 0; i < parts.length; i++) {
      if (value === null || typeof value !== "object") { return undefined; }
      value = value[parts[i]];
    }
    return value;
  }

  function cssColor(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  /* A chart component (templates/macros/chart.html): JSON from the API, drawn by Chart.js. */
  function drawChart(canvas) {
    var figure = canvas.closest("figure");
    var fallback = figure ? figure.querySelector(".chart-fallback") : null;
    function fail() {
      canvas.setAttribute("data-chart-ready", "error");
      if (fallback) { fallback.hidden = false; }
    }
    if (typeof window.Chart !== "function") { fail(); return; }
    fetch(canvas.getAttribute("data-chart-src"), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    }).then(function (payload) {
      var items = pick(payload, canvas.getAttribute("data-chart-items"));
      if (!Array.isArray(items)) { throw new Error("no items"); }
      var labelKey = canvas.getAttribute("data-chart-label");
      var valueKeys = (canvas.getAttribute("data-chart-values") || "").split(",");
      var legends = (canvas.getAttribute("data-chart-legends") || "").split(",");
      var palette = [cssColor("--chart-1", "#2563eb"), cssColor("--chart-2", "#dc2626"),
                     cssColor("--chart-3", "#16a34a"), cssColor("--chart-4", "#9333ea")];
      var datasets = valueKeys.map(function (key, index) {
        return {
          label: legends[index] || key,
          data: items.map(function (item) { return Number(pick(item, key)) || 0; }),
          backgroundColor: palette[index % palette.length],
          borderColor: palette[index % palette.length]
        };
      });
      new window.Chart(canvas, {
        type: canvas.getAttribute("data-chart-type") || "bar",
        data: {
          labels: items.map(function (item) { return String(pick(item, labelKey)); }),
          datasets: datasets
        },
        options: { responsive: true, maintainAspectRatio: false, animation: false }
      });
      canvas.setAttribute("data-chart-ready", "true");
    }).catch(fail);
  }

  function start() {
    syncMenu();
    window.addEventListener("resize", syncMenu);
    document.querySelectorAll("canvas[data-chart-src]").forEach(drawChart);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
