/* stmails admin UI: the campaign and template editors (progressive enhancement; the forms work
 * without this file). Loaded with `defer`; no inline script or style (Content-Security-Policy).
 *
 * - Rich text: the body textarea is replaced by a Quill editor (static/vendor/quill) while the
 *   format is "richtext"; the textarea keeps the HTML the form submits. A body with inline
 *   styles stays in the textarea (see hasInlineStyles).
 * - Changing the format converts the body on the server (POST /api/campaigns/{id}/content).
 * - Live preview: a pause in typing re-renders the preview iframe (the form's preview button,
 *   which posts the unsaved fields into the sandboxed frame). */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function debounce(fn, wait) {
    var timer = null;
    return function () {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(fn, wait);
    };
  }

  function livePreview(form) {
    var button = form.querySelector("#preview-button");
    if (!button || button.disabled) { return function () {}; }
    return debounce(function () {
      if (form.checkValidity()) { form.requestSubmit(button); }
    }, 700);
  }

  /* Quill's semantic HTML (lists as <ul>/<ol>, no editor classes) writes every space as
   * &nbsp;, which would keep mail clients from wrapping lines: plain spaces again. */
  function htmlOf(quill) {
    return quill.getSemanticHTML().replace(/&nbsp;/g, " ");
  }

  function setUpCampaign(form) {
    var textarea = form.querySelector("textarea[data-body]");
    var typeSelect = form.querySelector("select[data-content-type]");
    var holder = form.querySelector("#rich-editor");
    var problem = form.querySelector("#convert-error");
    var notice = form.querySelector("#rich-notice");
    if (!textarea || !typeSelect || !holder) { return; }
    var refresh = livePreview(form);
    var quill = null;
    var current = typeSelect.value;

    /* Inline styles (style="...") cannot be read into the editor under our CSP (the browser
     * refuses them while parsing), so the editor would drop them on save: such a body stays
     * in the text area, with a notice, instead of losing its styles. */
    function hasInlineStyles(html) {
      return /<[^>]*\sstyle\s*=/i.test(html);
    }

    function startRich() {
      if (typeof window.Quill !== "function" || quill) { return; }
      if (notice) { notice.hidden = !hasInlineStyles(textarea.value); }
      if (hasInlineStyles(textarea.value)) { return; }
      holder.hidden = false;
      var box = document.createElement("div");
      holder.appendChild(box);
      /* No image button: Quill would embed the file as a data: URL, which many mail clients
       * do not show; images go in by URL (HTML format) or from the media library. */
      quill = new window.Quill(box, {
        theme: "snow",
        modules: {
          toolbar: [
            [{ header: [1, 2, 3, false] }],
            ["bold", "italic", "underline", "strike"],
            [{ list: "ordered" }, { list: "bullet" }],
            ["link", "blockquote", "code-block"],
            ["clean"]
          ]
        }
      });
      quill.clipboard.dangerouslyPasteHTML(textarea.value || "");
      quill.root.setAttribute("aria-labelledby", "body-label");
      quill.root.setAttribute("role", "textbox");
      quill.root.setAttribute("aria-multiline", "true");
      quill.on("text-change", function () {
        textarea.value = htmlOf(quill);
        refresh();
      });
      textarea.hidden = true;
    }

    function stopRich() {
      if (notice) { notice.hidden = true; }
      if (!quill) { return; }
      textarea.value = htmlOf(quill);
      quill = null;
      while (holder.firstChild) { holder.removeChild(holder.firstChild); }
      holder.hidden = true;
      textarea.hidden = false;
    }

    function convert(from, to) {
      if (problem) { problem.hidden = true; }
      var id = form.getAttribute("data-campaign-id") || "0";
      return fetch("/api/campaigns/" + encodeURIComponent(id) + "/content", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify({ body: textarea.value, from: from, to: to })
      }).then(function (response) {
        return response.json().then(function (payload) {
          if (!response.ok) { throw new Error(payload.message || ("HTTP " + response.status)); }
          return payload.data;
        });
      });
    }

    typeSelect.addEventListener("change", function () {
      var target = typeSelect.value;
      var source = current;
      if (quill) { textarea.value = htmlOf(quill); }
      typeSelect.disabled = true;
      convert(source, target).then(function (converted) {
        stopRich();
        textarea.value = converted;
        current = target;
        if (target === "richtext") { startRich(); }
        refresh();
      }).catch(function (error) {
        typeSelect.value = source;
        if (problem) { problem.textContent = error.message; problem.hidden = false; }
      }).then(function () {
        typeSelect.disabled = false;
      });
    });

    form.addEventListener("input", function (event) {
      if (event.target !== typeSelect) { refresh(); }
    });
    form.addEventListener("submit", function () {
      if (quill) { textarea.value = htmlOf(quill); }
    });
    if (current === "richtext") { startRich(); }
  }

  function setUpTemplate(form) {
    var refresh = livePreview(form);
    form.addEventListener("input", refresh);
  }

  function init() {
    var campaign = document.getElementById("campaign-form");
    if (campaign && !campaign.querySelector("fieldset[disabled]")) { setUpCampaign(campaign); }
    var template = document.getElementById("template-form");
    if (template && !template.querySelector("fieldset[disabled]")) { setUpTemplate(template); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
