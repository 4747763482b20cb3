import { cartTotal } from "./cart.js";

export function checkout(cart) {
  return cartTotal(cart);
}

export const brokenCart = { items: [{ details: { price: 3 }, quantity: 2 }, { quantity: 1 }] };
