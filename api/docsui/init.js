// Starts Swagger UI on the spec this server serves. Kept in its own file
// so the page's CSP can forbid inline scripts.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // The validator badge would call validator.swagger.io.
  validatorUrl: null,
});
