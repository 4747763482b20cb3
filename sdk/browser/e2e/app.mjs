// The ESM build as an app would use it, bundled by esbuild in the
// end-to-end test; the driver reaches the API through window.Sightline.
import * as Sightline from "@sightline/browser";

window.Sightline = Sightline;
Sightline.init(window.SIGHTLINE_CONFIG);
