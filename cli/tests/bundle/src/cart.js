// A cart whose total breaks on an item without a price.
export function lineTotal(item) {
  const price = item.details.price;
  return price * item.quantity;
}

export function cartTotal(cart) {
  let total = 0;
  for (const item of cart.items) {
    total += lineTotal(item);
  }
  return total;
}
