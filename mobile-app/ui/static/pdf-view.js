// Renders a PDF on the phone, before the PIN, with pdf.js (npm pdfjs-dist, copied into pdfjs/ by
// scripts/build-app.sh; nothing is fetched from the network). The Rust UI calls
// window.yiqianRenderPdf(element, base64, zoom) with bytes the shell has checked against the
// SM3 on the screen, and gets the document's page count back. zoom 1 fits a page to the
// element's width; 2 draws it twice as wide (sharp, scrolled inside the element) for reading.
// pdf.js is loaded on first use only, so the app starts as fast without it.

const MAX_PAGES = 30;
const here = (path) => new URL(path, import.meta.url).href;
let pdfjs = null;

async function library() {
  if (!pdfjs) {
    pdfjs = await import('./pdfjs/pdf.min.mjs');
    pdfjs.GlobalWorkerOptions.workerSrc = here('pdfjs/pdf.worker.min.mjs');
  }
  return pdfjs;
}

function bytes(base64) {
  const bin = atob(base64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

window.yiqianRenderPdf = async function (element, base64, zoom) {
  const z = zoom > 1 ? zoom : 1;
  // A newer call (zoom pressed again) takes the element over; this one stops drawing.
  const turn = (element.yiqianTurn = (element.yiqianTurn || 0) + 1);
  let doc;
  try {
    const lib = await library();
    doc = await lib.getDocument({
      data: bytes(base64),
      cMapUrl: here('pdfjs/cmaps/'),
      cMapPacked: true,
      standardFontDataUrl: here('pdfjs/standard_fonts/'),
      // The app's content security policy allows no eval; no scripts or forms of the PDF run.
      isEvalSupported: false,
      enableXfa: false,
    }).promise;
  } catch (e) {
    // Unreadable: no "drawing…" left behind; the UI says what to do instead.
    if (element.yiqianTurn === turn) element.textContent = '';
    throw e;
  }
  try {
    if (element.yiqianTurn !== turn) return doc.numPages;
    element.textContent = '';
    const width = Math.max(element.clientWidth - 8, 280) * z;
    const ratio = window.devicePixelRatio || 1;
    const pages = Math.min(doc.numPages, MAX_PAGES);
    for (let n = 1; n <= pages; n++) {
      if (element.yiqianTurn !== turn) break;
      const page = await doc.getPage(n);
      const scale = (width / page.getViewport({ scale: 1 }).width) * ratio;
      const viewport = page.getViewport({ scale });
      const canvas = document.createElement('canvas');
      canvas.width = Math.floor(viewport.width);
      canvas.height = Math.floor(viewport.height);
      canvas.className = 'pdf-page';
      canvas.style.width = width + 'px';
      canvas.dataset.page = String(n);
      element.appendChild(canvas);
      await page.render({ canvasContext: canvas.getContext('2d'), viewport }).promise;
      page.cleanup();
    }
    return doc.numPages;
  } finally {
    await doc.destroy();
  }
};
