// Bundle planb's browser client into OUT (argv[2]) with esbuild: one app.js for the
// browser, no source maps, nothing loaded at run time from outside the folder.
// Run by 'planb bundle build' (planb/bundle/client.py) after 'npm ci'.
import {build} from "esbuild";

const out = process.argv[2];
if (!out) {
    console.error("usage: node build.mjs OUT_DIR");
    process.exit(2);
}

// hydrogen-view-sdk imports olm.js only for its side effect; the page loads olm.js
// itself (Platform.loadOlm adds it as a script next to olm.wasm), so the bundle
// gets an empty module instead of a second copy of olm.
const olmAsScript = {
    name: "olm-as-script",
    setup(b) {
        b.onResolve({filter: /^@matrix-org\/olm\/olm\.js$/}, () => ({
            path: "olm-as-script", namespace: "planb-empty",
        }));
        b.onLoad({filter: /.*/, namespace: "planb-empty"}, () => ({contents: "", loader: "js"}));
    },
};

await build({
    entryPoints: ["src/main.js"],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: ["es2020"],
    minify: true,
    legalComments: "eof",
    charset: "utf8",
    outfile: `${out}/app.js`,
    logLevel: "warning",
    plugins: [olmAsScript],
});
