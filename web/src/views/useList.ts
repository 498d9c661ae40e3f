// A list loaded from the API, reloaded after every action that changes it.
import { useCallback, useEffect, useState } from "react";

export function useLoad<T>(load: () => Promise<T>, report: (e: unknown) => void): [T | null, () => void] {
  const [value, setValue] = useState<T | null>(null);
  const [generation, setGeneration] = useState(0);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  useEffect(() => {
    let live = true;
    load().then((v) => live && setValue(v), report);
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [generation]);
  return [value, reload];
}
