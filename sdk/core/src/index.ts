export { MAX_QUEUE, Transport, type TransportOptions } from "./transport";
export type { PropValue, WireEvent } from "./wire";
