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

  /* Answers by URL: the charts of one page that read the same API answer share one request. */
  var answers = {};
  function fetchJson(url) {
    if (!answers[url]) {
      answers[url] = fetch(url, {
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      });
    }
    return answers[url];
  }

  /* Day labels: an ISO timestamp at midnight UTC reads as its date. */
  function labelText(value) {
    var text = String(value);
    return /^\d{4}-\d{2}-\d{2}T00:00:00Z$/.test(text) ? text.slice(0, 10) : text;
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
    fetchJson(canvas.getAttribute("data-chart-src")).then(function (payload) {
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
      var lines = canvas.getAttribute("data-chart-lines");
      if (lines) {
        var lineLegends = (canvas.getAttribute("data-chart-line-legends") || "").split(",");
        var lineColors = [cssColor("--warning", "#d97706"), cssColor("--danger", "#b42318")];
        lines.split(",").forEach(function (value, index) {
          datasets.push({
            type: "line",
            label: lineLegends[index] || value,
            data: items.map(function () { return Number(value); }),
            borderColor: lineColors[index % lineColors.length],
            backgroundColor: lineColors[index % lineColors.length],
            borderDash: [6, 4],
            borderWidth: 1.5,
            /* One day has no line to draw: its threshold shows as a point. */
            pointRadius: items.length < 2 ? 4 : 0,
            pointStyle: "line",
            fill: false
          });
        });
      }
      /* Counts and rates start at zero; reference lines stay in view. */
      var yScale = { beginAtZero: true };
      if (lines) {
        yScale.suggestedMax = Math.max.apply(null, lines.split(",").map(Number)) * 1.2;
      }
      new window.Chart(canvas, {
        type: canvas.getAttribute("data-chart-type") || "bar",
        data: {
          labels: items.map(function (item) { return labelText(pick(item, labelKey)); }),
          datasets: datasets
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          scales: { y: yScale }
        }
      });
      canvas.setAttribute("data-chart-ready", "true");
    }).catch(fail);
  }

  /* A list filled from an API answer (data-list-src, -items, -text: keys shown per item),
   * as text only: nothing from the answer becomes markup. */
  function fillList(list) {
    fetchJson(list.getAttribute("data-list-src")).then(function (payload) {
      var items = pick(payload, list.getAttribute("data-list-items"));
      if (!Array.isArray(items)) { items = Array.isArray(payload.data) ? payload.data : []; }
      var keys = (list.getAttribute("data-list-text") || "").split(",");
      list.textContent = "";
      items.forEach(function (item) {
        var entry = document.createElement("li");
        entry.textContent = keys.map(function (key) {
          var value = pick(item, key);
          return value === undefined || value === null ? "" : String(value);
        }).filter(Boolean).join(": ");
        list.appendChild(entry);
      });
      if (!items.length) {
        var none = document.createElement("li");
        none.textContent = list.getAttribute("data-list-empty") || "";
        list.appendChild(none);
      }
      list.setAttribute("data-list-ready", "true");
    }).catch(function () { list.setAttribute("data-list-ready", "error"); });
  }

  /* A <select data-autosubmit> submits its form when changed (the button stays for no-JS). */
  function autosubmit(event) {
    var target = event.target;
    if (target && target.matches && target.matches("select[data-autosubmit]") && target.form) {
      target.form.submit();
    }
  }

  /* <code data-copy="Copy">: a button after it copies its text (the text stays selectable). */
  function copyButton(code) {
    if (!navigator.clipboard) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button button-secondary copy-button";
    button.textContent = code.getAttribute("data-copy") || "Copy";
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(code.textContent).then(function () {
        button.setAttribute("data-copied", "true");
      }, function () { button.setAttribute("data-copied", "false"); });
    });
    code.insertAdjacentElement("afterend", button);
  }

  function start() {
    syncMenu();
    window.addEventListener("resize", syncMenu);
    document.addEventListener("change", autosubmit);
    document.querySelectorAll("canvas[data-chart-src]").forEach(drawChart);
    document.querySelectorAll("[data-list-src]").forEach(fillList);
    document.querySelectorAll("code[data-copy]").forEach(copyButton);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
