// A list loaded from the API: reloaded after every action that changes it, when the window
// regains focus or the page becomes visible, and on a short poll while it is visible — so what
// another user did shows up without a reload. A failed poll keeps the last list on the page and
// says nothing (the next one tries again); a failed first load or reload is reported.
import { useCallback, useEffect, useRef, useState } from "react";

/** How often a visible list asks again. */
export const POLL_MS = 10_000;

export function useLoad<T>(load: () => Promise<T>, report: (e: unknown) => void, key: unknown = null): [T | null, () => void] {
  const [value, setValue] = useState<T | null>(null);
  const [generation, setGeneration] = useState(0);
  const quiet = useRef(false);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  useEffect(() => {
    const again = () => {
      if (document.visibilityState !== "visible") return;
      quiet.current = true;
      setGeneration((g) => g + 1);
    };
    const timer = setInterval(again, POLL_MS);
    window.addEventListener("focus", again);
    document.addEventListener("visibilitychange", again);
    return () => {
      clearInterval(timer);
      window.removeEventListener("focus", again);
      document.removeEventListener("visibilitychange", again);
    };
  }, []);
  useEffect(() => setValue(null), [key]);
  useEffect(() => {
    let live = true;
    const silent = quiet.current;
    quiet.current = false;
    load().then(
      (v) => live && setValue(v),
      (e) => live && !silent && report(e),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [generation, key]);
  return [value, reload];
}
