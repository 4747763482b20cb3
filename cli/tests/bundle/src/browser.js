import { brokenCart, checkout } from "./checkout.js";

try {
  checkout(brokenCart);
} catch (error) {
  // The test reads the real Chromium stack of the minified bundle from the DOM.
  const out = document.createElement("pre");
  out.id = "thrown";
  out.textContent = JSON.stringify({ type: error.name, message: error.message, stack: error.stack });
  document.body.appendChild(out);
}
