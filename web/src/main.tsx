// Entry point: mounts the client and exposes the Calling SDK probe for tests and curious developers.
import { createRoot } from "react-dom/client";
import { App } from "./App";
import "./probe";

createRoot(document.getElementById("root")!).render(<App />);
