// stmails: starts Swagger UI on the page's #swagger-ui element, with the OpenAPI document the
// element names. A file of its own (not an inline script), so that the page works under a
// Content-Security-Policy of script-src 'self'. No validator: nothing is fetched from elsewhere.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
