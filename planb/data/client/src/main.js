// planb's browser client: Hydrogen (hydrogen-view-sdk) mounted as a whole app.
// The homeserver is the site's own (config.json, written by planb's nginx role):
// the agent types a login and a password, nothing else. Every asset is served from
// this folder; nothing is fetched from anywhere else.
import {
    Platform,
    RootViewModel,
    FeatureSet,
    createNavigation,
    createRouter,
} from "hydrogen-view-sdk";

const assetPaths = {
    downloadSandbox: "./assets/download-sandbox.html",
    worker: "./assets/main.js",
    olm: {
        wasm: "./olm/olm.wasm",
        legacyBundle: "./olm/olm_legacy.js",
        wasmBundle: "./olm/olm.js",
    },
    serviceWorker: "./sw.js",
};

// The service worker (authenticated media) registers only where the browser allows
// it; elsewhere (a policy that forbids it, a certificate the browser refuses) the
// client runs without it rather than not at all: messages work, images may not.
async function withServiceWorker(paths) {
    if (!("serviceWorker" in navigator)) {
        return paths;
    }
    try {
        await navigator.serviceWorker.register(paths.serviceWorker);
        return paths;
    } catch (err) {
        console.warn(`planb client: no service worker (${err && err.message})`);
        const {serviceWorker, ...rest} = paths;
        return rest;
    }
}

async function main() {
    const container = document.getElementById("planb-client");
    const platform = new Platform({
        container,
        assetPaths: await withServiceWorker(assetPaths),
        configURL: "./config.json",
        options: {development: false},
    });
    await platform.init();
    const features = await FeatureSet.load(platform.settingsStorage);
    const navigation = createNavigation();
    platform.setNavigation(navigation);
    const urlRouter = createRouter({navigation, history: platform.history});
    urlRouter.attach();
    const vm = new RootViewModel({platform, urlRouter, navigation, features});
    await vm.load();
    platform.createAndMountRootView(vm);
    document.documentElement.dataset.planbClient = "ready";
}

main().catch((err) => {
    document.documentElement.dataset.planbClient = "error";
    console.error(`planb client: ${err && err.message}`);
});
