// @sightline/react: <SightlineProvider> starts the browser SDK once,
// <ErrorBoundary> reports what it catches (with the component stack) and
// shows a fallback, useTrack() gives components the SDK's track, and
// usePageview(route) records a page view whenever the route changes (for
// routers the browser SDK's History API tracking does not see).

import { Component, useCallback, useEffect, useRef, type ErrorInfo, type ReactNode } from "react";

import { captureException, init, pageview, track, type PropValue, type SightlineOptions } from "@sightline/browser";

export type { PropValue, SightlineOptions } from "@sightline/browser";

/** Starts Sightline with `options`, once, whatever re-renders; while
 * rendering rather than in an effect, so the children's own effects can
 * already track. */
export function SightlineProvider(props: { options: SightlineOptions; children?: ReactNode }): ReactNode {
  const started = useRef(false);
  if (!started.current && typeof window !== "undefined") {
    started.current = true;
    init(props.options);
  }
  return props.children ?? null;
}

interface BoundaryProps {
  /** Shown instead of the children once they threw: an element, or a
   * function of the error and a way to try the children again. */
  fallback: ReactNode | ((error: Error, reset: () => void) => ReactNode);
  children?: ReactNode;
}

/** Reports what its children throw while rendering, then shows `fallback`. */
export class ErrorBoundary extends Component<BoundaryProps, { error: Error | null }> {
  state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error): { error: Error } {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    // The component stack says where in the tree it happened.
    if (info.componentStack && error.stack && !error.stack.includes(info.componentStack)) {
      try {
        error.stack = `${error.stack}\n${info.componentStack}`;
      } catch {
        // A frozen error keeps its own stack.
      }
    }
    captureException(error);
  }

  private reset = (): void => this.setState({ error: null });

  render(): ReactNode {
    const { error } = this.state;
    if (!error) return this.props.children ?? null;
    const { fallback } = this.props;
    return typeof fallback === "function" ? fallback(error, this.reset) : fallback;
  }
}

/** The SDK's `track`, stable across renders. */
export function useTrack(): (name: string, props?: Record<string, PropValue>) => void {
  return useCallback((name: string, props?: Record<string, PropValue>) => void track(name, props), []);
}

/** Records a page view whenever `route` changes (e.g. a router's location
 * key). With the browser SDK's automatic page views (the default) History
 * API navigation is already recorded; a URL already recorded last is never
 * counted twice. */
export function usePageview(route: unknown): void {
  useEffect(() => void pageview(), [route]);
}
