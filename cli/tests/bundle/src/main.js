import { brokenCart, checkout } from "./checkout.js";

try {
  checkout(brokenCart);
} catch (error) {
  // The test reads the real V8 stack of the minified bundle from stdout.
  process.stdout.write(JSON.stringify({ type: error.name, message: error.message, stack: error.stack }));
}
