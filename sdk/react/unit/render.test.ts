// Server rendering: the provider and the boundary render their children and
// never start the SDK where there is no window.
import { createElement as h } from "react";
import { renderToString } from "react-dom/server";
import { describe, expect, it } from "vitest";

import { ErrorBoundary, SightlineProvider } from "../src/index";

describe("@sightline/react on the server", () => {
  it("renders the children of the provider and the boundary", () => {
    const html = renderToString(
      h(SightlineProvider, { options: { key: "pk_1", endpoint: "http://127.0.0.1:1" } }, h(ErrorBoundary, { fallback: "oops" }, h("p", null, "shop"))),
    );
    expect(html).toBe("<p>shop</p>");
  });

  it("gives the fallback a way to try again", () => {
    const boundary = new ErrorBoundary({ fallback: (error: Error) => `failed: ${error.message}` });
    boundary.state = ErrorBoundary.getDerivedStateFromError(new Error("boom"));
    expect(boundary.render()).toBe("failed: boom");
  });
});
