/* Draw a digit and watch the book's LeNet read it, in the browser.
 *
 * The drawing is turned into a 28x28 image the way MNIST's digits were made,
 * then run through tools/export_onnx.py's export of chapter 3's LeNet by ONNX
 * Runtime Web (WebAssembly, one thread). Nothing leaves the page.
 *
 * Entry point for people and tests: window.liveDigit.classify(image), where
 * image is the drawing canvas (or any canvas: it is preprocessed first) or 784
 * grey values in [0, 1], row by row, ink 1 (already 28x28: run as they are).
 * It resolves to {prediction, probabilities, input}, and shows the input, the
 * feature maps and the probabilities on the page, as drawing does.
 */
(function () {
  "use strict";

  const SIZE = 28; // the network's input, in pixels
  const BOX = 20; // MNIST scales each digit's bounding box into 20x20
  const PEN_WIDTH = 28; // of 280 pixels: MNIST-thick strokes for a digit 4/5 of the box tall
  const INK_THRESHOLD = 0.05; // alpha below this is not part of the digit
  const READY = "Ready: draw a digit in the box.";
  const assets = new URL(".", document.currentScript.src).href;

  /* ---- From a drawing to MNIST's 28x28 ---------------------------------- */

  function inkOf(canvas) {
    const context = canvas.getContext("2d", { willReadFrequently: true });
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    // The ink is the alpha channel: strokes are opaque, the background is
    // transparent, whatever colours the theme gives them.
    const ink = new Float32Array(canvas.width * canvas.height);
    for (let i = 0; i < ink.length; i += 1) ink[i] = data[4 * i + 3] / 255;
    return { ink, width: canvas.width, height: canvas.height };
  }

  function boundingBox({ ink, width, height }) {
    let left = width, right = -1, top = height, bottom = -1;
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        if (ink[y * width + x] < INK_THRESHOLD) continue;
        left = Math.min(left, x); right = Math.max(right, x);
        top = Math.min(top, y); bottom = Math.max(bottom, y);
      }
    }
    return right < 0 ? null : { left, top, width: right - left + 1, height: bottom - top + 1 };
  }

  // For each output pixel along one axis: the source pixels it covers and how
  // much of each (area averaging: the anti-aliased grey of a shrunk image).
  function coverage(start, scale, outputs) {
    const spans = [];
    for (let out = 0; out < outputs; out += 1) {
      const from = start + out * scale, to = from + scale, span = [];
      for (let source = Math.floor(from); source < Math.ceil(to); source += 1) {
        const overlap = Math.min(to, source + 1) - Math.max(from, source);
        if (overlap > 0) span.push([source, overlap / scale]);
      }
      spans.push(span);
    }
    return spans;
  }

  function shrink(image, box) {
    const scale = Math.max(box.width, box.height) / BOX;
    const width = Math.max(1, Math.ceil(box.width / scale - 1e-6));
    const height = Math.max(1, Math.ceil(box.height / scale - 1e-6));
    const columns = coverage(box.left, scale, width);
    const rows = coverage(box.top, scale, height);
    const read = (x, y) => (x < image.width && y < image.height ? image.ink[y * image.width + x] : 0);
    const small = new Float32Array(width * height);
    rows.forEach((row, y) => columns.forEach((column, x) => {
      let sum = 0;
      for (const [sourceY, weightY] of row) {
        for (const [sourceX, weightX] of column) sum += weightY * weightX * read(sourceX, sourceY);
      }
      small[y * width + x] = Math.min(1, sum);
    }));
    return { ink: small, width, height };
  }

  function centreOfMass({ ink, width, height }) {
    let mass = 0, sumX = 0, sumY = 0;
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        const value = ink[y * width + x];
        mass += value; sumX += value * x; sumY += value * y;
      }
    }
    return { x: sumX / mass, y: sumY / mass };
  }

  function placeByCentreOfMass(small) {
    const centre = centreOfMass(small);
    const clamp = (value, most) => Math.min(Math.max(value, 0), most);
    // MNIST's centres of mass sit at pixel (14, 14), counting pixels from 0;
    // shift by whole pixels, as far as the 28x28 frame allows.
    const left = clamp(Math.round(SIZE / 2 - centre.x), SIZE - small.width);
    const top = clamp(Math.round(SIZE / 2 - centre.y), SIZE - small.height);
    const pixels = new Float32Array(SIZE * SIZE);
    for (let y = 0; y < small.height; y += 1) {
      for (let x = 0; x < small.width; x += 1) {
        pixels[(top + y) * SIZE + left + x] = small.ink[y * small.width + x];
      }
    }
    return pixels;
  }

  /** The 28x28 input for a drawing, or null when the canvas holds no ink. */
  function preprocess(canvas) {
    const image = inkOf(canvas);
    const box = boundingBox(image);
    return box === null ? null : placeByCentreOfMass(shrink(image, box));
  }

  /* ---- The model ---------------------------------------------------------- */

  async function loadSession() {
    if (typeof ort === "undefined") throw new Error("ONNX Runtime Web did not load");
    ort.env.wasm.numThreads = 1; // threads need headers GitHub Pages does not send
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmPaths = assets;
    return ort.InferenceSession.create(assets + "lenet.onnx", { executionProviders: ["wasm"] });
  }

  const sessionReady = loadSession();
  let queue = sessionReady; // one run at a time, in order

  function infer(pixels) {
    const run = queue.then(async (session) => {
      const image = new ort.Tensor("float32", Float32Array.from(pixels), [1, SIZE, SIZE, 1]);
      const outputs = await session.run({ image });
      return { conv1: outputs.conv1, conv2: outputs.conv2,
               probabilities: Array.from(outputs.probabilities.data) };
    });
    queue = run.then(() => sessionReady, () => sessionReady);
    return run;
  }

  /* ---- Showing what the network sees ------------------------------------- */

  const widget = document.getElementById("live-digit");
  const part = (name) => widget.querySelector(`[data-part="${name}"]`);

  function paintGrey(context, values, width, height, x0, y0, peak) {
    const picture = context.createImageData(width, height);
    for (let i = 0; i < width * height; i += 1) {
      const grey = peak > 0 ? Math.round(255 * Math.min(1, values(i) / peak)) : 0;
      picture.data.set([grey, grey, grey, 255], 4 * i);
    }
    context.putImageData(picture, x0, y0);
  }

  // One tile per map, `columns` across, 1 px apart; one brightness scale for
  // the whole layer, so a map that responds weakly looks dark.
  function paintMaps(canvas, tensor, columns) {
    const [, height, width, channels] = tensor.dims;
    const rows = Math.ceil(channels / columns);
    canvas.width = columns * (width + 1) - 1;
    canvas.height = rows * (height + 1) - 1;
    const context = canvas.getContext("2d");
    const data = tensor.data;
    let peak = 0;
    for (const value of data) peak = Math.max(peak, value);
    for (let channel = 0; channel < channels; channel += 1) {
      const x0 = (channel % columns) * (width + 1), y0 = Math.floor(channel / columns) * (height + 1);
      paintGrey(context, (i) => data[i * channels + channel], width, height, x0, y0, peak);
    }
  }

  function paintBars(probabilities) {
    const best = probabilities.indexOf(Math.max(...probabilities));
    part("bars").querySelectorAll("li").forEach((item, digit) => {
      const percent = 100 * probabilities[digit];
      item.querySelector(".live-digit-bar").style.width = `${percent}%`;
      item.querySelector(".live-digit-value").textContent = `${percent.toFixed(1)}%`;
      item.classList.toggle("live-digit-best", digit === best);
    });
    return best;
  }

  function show(pixels, result, announce) {
    const input = part("input");
    paintGrey(input.getContext("2d"), (i) => pixels[i], SIZE, SIZE, 0, 0, 1);
    paintMaps(part("conv1"), result.conv1, 10);
    paintMaps(part("conv2"), result.conv2, 10);
    const best = paintBars(result.probabilities);
    const sure = (100 * result.probabilities[best]).toFixed(1);
    const text = `LeNet reads a ${best}, with probability ${sure}%.`;
    part("prediction-visible").textContent = text;
    if (announce) part("prediction").textContent = text;
    return best;
  }

  function clearOutputs() {
    for (const name of ["input", "conv1", "conv2"]) {
      const canvas = part(name);
      canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    }
    paintBars(new Array(10).fill(0));
    part("bars").querySelectorAll("li").forEach((item) => item.classList.remove("live-digit-best"));
    part("prediction-visible").textContent = "";
    part("prediction").textContent = "";
  }

  /**
   * Run the drawing's pipeline on an image and show the result.
   *
   * @param {HTMLCanvasElement|ArrayLike<number>} image A canvas (preprocessed
   *   as a drawing) or 784 grey values in [0, 1], ink 1, row by row.
   * @param {{announce?: boolean}} options Whether screen readers hear the
   *   result (true by default; drawing announces only when a stroke ends).
   * @returns {Promise<{prediction: number, probabilities: number[], input: Float32Array}|null>}
   *   null for a canvas without ink.
   */
  async function classify(image, { announce = true } = {}) {
    const pixels = image instanceof HTMLCanvasElement ? preprocess(image) : Float32Array.from(image);
    if (pixels === null) return null;
    if (pixels.length !== SIZE * SIZE) {
      throw new RangeError(`liveDigit.classify: expected ${SIZE * SIZE} values, got ${pixels.length}`);
    }
    const result = await infer(pixels);
    const prediction = show(pixels, result, announce);
    return { prediction, probabilities: result.probabilities, input: pixels };
  }

  /* ---- Drawing with mouse, pen or finger ---------------------------------- */

  const pad = part("pad");
  const pen = pad.getContext("2d", { willReadFrequently: true });
  let last = null; // the previous point of the stroke being drawn
  let pending = false; // a live update is already scheduled

  function inkColour() {
    const style = getComputedStyle(document.documentElement);
    return style.getPropertyValue("--pst-color-text-base").trim() || "#222";
  }

  function recolour() {
    // Keep the strokes (their alpha), repaint them in the theme's text colour.
    pen.save();
    pen.globalCompositeOperation = "source-in";
    pen.fillStyle = inkColour();
    pen.fillRect(0, 0, pad.width, pad.height);
    pen.restore();
  }

  function pointOf(event) {
    const rect = pad.getBoundingClientRect();
    return { x: (event.clientX - rect.left) * (pad.width / rect.width),
             y: (event.clientY - rect.top) * (pad.height / rect.height) };
  }

  function strokeTo(point) {
    pen.strokeStyle = inkColour();
    pen.lineWidth = PEN_WIDTH;
    pen.lineCap = "round";
    pen.lineJoin = "round";
    pen.beginPath();
    pen.moveTo((last || point).x, (last || point).y);
    pen.lineTo(point.x + (last ? 0 : 0.01), point.y);
    pen.stroke();
    last = point;
  }

  function update(announce) {
    if (!announce && pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      classify(pad, { announce }).catch(reportError);
    });
  }

  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    last = null;
    strokeTo(pointOf(event));
    update(false);
  });
  pad.addEventListener("pointermove", (event) => {
    if (last === null) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const each of events.length ? events : [event]) strokeTo(pointOf(each));
    update(false);
  });
  const endStroke = () => {
    if (last === null) return;
    last = null;
    update(true);
  };
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  function clear() {
    pen.clearRect(0, 0, pad.width, pad.height);
    last = null;
    clearOutputs();
    part("status").textContent = READY;
  }

  part("clear").addEventListener("click", clear);
  widget.addEventListener("keydown", (event) => {
    if (event.key === "Escape") clear();
  });
  new MutationObserver(recolour).observe(document.documentElement,
                                         { attributes: true, attributeFilter: ["data-theme"] });

  function reportError(error) {
    part("status").textContent = `The model could not run: ${error.message}`;
    console.error("live digit:", error);
  }

  const ready = sessionReady.then(() => {
    part("status").textContent = READY;
    widget.dataset.state = "ready";
  });
  ready.catch(reportError);

  window.liveDigit = { classify, preprocess, clear, ready, size: SIZE };
})();
