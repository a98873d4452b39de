// Browsers without WebAssembly or ES modules (very old WeChat kernels) get a clear message
// instead of a blank page. Plain ES5 on purpose.
(function () {
  var ok = typeof WebAssembly === 'object' && 'noModule' in document.createElement('script');
  if (!ok) {
    document.getElementById('boot').innerHTML =
      '<p>当前浏览器版本过低，无法打开签署页面。请升级微信或使用系统浏览器打开链接。</p>' +
      '<p>This browser is too old for the signing page; please update it or open the link in the system browser.</p>';
  }
})();
