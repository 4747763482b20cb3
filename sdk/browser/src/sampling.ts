// Sampling by session: a session is all in or all out, the same answer on
// every page of it, so sampled sessions stay whole.

/** Whether the session `sessionId` is among the `rate` (0 to 1) sampled. */
export function inSample(sessionId: string, rate: number): boolean {
  if (rate >= 1) return true;
  if (!(rate > 0)) return false;
  // FNV-1a over the id: uniform enough, tiny, no crypto needed.
  let hash = 2166136261;
  for (let i = 0; i < sessionId.length; i++) hash = Math.imul(hash ^ sessionId.charCodeAt(i), 16777619);
  return (hash >>> 0) / 4294967296 < rate;
}
