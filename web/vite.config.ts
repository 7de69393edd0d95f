import { defineConfig } from "vite";

// Fixed output names and no source maps: the built files are committed and embedded in the Go binary,
// and CI rebuilds them to check they match, so the same sources must give the same bytes every time.
export default defineConfig({
  base: "/app/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    modulePreload: { polyfill: false },
    rollupOptions: {
      output: {
        entryFileNames: "assets/app.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/[name][extname]",
      },
    },
  },
});
