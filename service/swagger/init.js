// GET /docs: Swagger UI on this instance's own /openapi.json. A file, not an
// inline script, so the page's Content-Security-Policy allows no inline code;
// every URL is relative, so nothing is fetched from anywhere but this instance.
"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    // No top bar: its box would load any document from any URL.
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    displayRequestDuration: true,
    // The online validator badge would call validator.swagger.io.
    validatorUrl: null,
  });
});
