// What jsdom lacks and the field libraries ask for at load time (uPlot reads the
// device pixel ratio through matchMedia).
if (typeof window.matchMedia !== "function") {
  window.matchMedia = (query: string) =>
    ({ matches: false, media: query, onchange: null, addListener() {}, removeListener() {}, addEventListener() {}, removeEventListener() {}, dispatchEvent: () => false }) as MediaQueryList;
}
// Svelte's bind:clientHeight observes sizes; jsdom lays nothing out, so sizes never
// change and an observer that never fires is what it would be.
if (typeof globalThis.ResizeObserver !== "function") {
  globalThis.ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  } as unknown as typeof ResizeObserver;
}
