// swagger-ui-dist ships the bundle as a UMD file without its own typings;
// reuse the shapes from @types/swagger-ui-dist.
declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  import type { SwaggerUIBundle } from 'swagger-ui-dist';
  const bundle: SwaggerUIBundle;
  export default bundle;
}
