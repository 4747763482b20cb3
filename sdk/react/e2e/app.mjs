// A React app using @sightline/react, bundled by esbuild in the end-to-end
// test: a button that tracks, one that makes a component throw while
// rendering (the error boundary reports it and shows its fallback).
import { createElement as h, useState } from "react";
import { createRoot } from "react-dom/client";

import { ErrorBoundary, SightlineProvider, useTrack } from "@sightline/react";

function Cart() {
  const track = useTrack();
  const [broken, setBroken] = useState(false);
  if (broken) throw new TypeError("the cart could not render");
  return h(
    "div",
    null,
    h("button", { id: "signup", onClick: () => track("signup", { plan: "pro" }) }, "Sign up"),
    h("button", { id: "break", onClick: () => setBroken(true) }, "Break the cart"),
  );
}

createRoot(document.getElementById("root")).render(
  h(
    SightlineProvider,
    { options: window.SIGHTLINE_CONFIG },
    h(ErrorBoundary, { fallback: h("p", { id: "fallback" }, "Something went wrong.") }, h(Cart)),
  ),
);
