// Entry of the second page (`/api-docs`): Swagger UI for the host's own OpenAPI document.
// Swagger UI is imported (not linked from a CDN) so the page works offline and its
// files end up hashed under dist/assets/ like everything else.
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';
import './api-docs.css';

document.title = 'Nexa API';

SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // Tokens pasted into "Authorize" must not outlive the tab (same rule as the dashboard).
  persistAuthorization: false,
  tryItOutEnabled: true,
  // The default validator badge calls validator.swagger.io; this page must work offline.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
});
