// Loads the wasm page (wasm-bindgen's app.js); a failure leaves a message, not a blank page.
import init from './app.js';

init({ module_or_path: new URL('app_bg.wasm', import.meta.url) }).catch(function (e) {
  document.getElementById('boot').innerHTML =
    '<p>页面加载失败，请检查网络后刷新。</p><p>The page failed to load; check the network and reload.</p>';
  console.error(e);
});
