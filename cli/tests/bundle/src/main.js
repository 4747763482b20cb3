import { cartTotal } from "./cart.js";

function checkout(cart) {
  return cartTotal(cart);
}

try {
  checkout({ items: [{ details: { price: 3 }, quantity: 2 }, { quantity: 1 }] });
} catch (error) {
  // The test reads the real V8 stack of the minified bundle from stdout.
  process.stdout.write(JSON.stringify({ type: error.name, message: error.message, stack: error.stack }));
}
