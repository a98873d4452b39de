// Loads the wasm page (wasm-bindgen's app.js); a failure leaves a message, not a blank page.
import init from './app.js';

init({ module_or_path: new URL('app_bg.wasm', import.meta.url) }).catch(function (e) {
  document.getElementById('boot').innerHTML =
    '<p>界面加载失败，请重新启动应用。</p><p>The interface failed to load; restart the app.</p>';
  console.error(e);
});
