// The training history held in the browser: what `TrainingMonitor` sends as custom messages (see
// docs/wire-and-dom.md, "TrainingMonitor traits and messages"), kept in typed arrays that grow by doubling
// so thousands of steps and hundreds of samples cost no per-row objects. Every view of the monitor (strips,
// curves, table) reads from here, so layer selection and scrubbing need no round trip to the kernel.
//
// Each run holds one contiguous window of steps and one of samples, `[base, base + count)` in the run's own
// numbering. A chunk that starts inside or right after the window overwrites from there; a chunk that
// starts past the end (a gap: chunks sent before this view existed) or before the window replaces it, since
// every chunk runs up to the newest row the kernel had.

/** Histogram bins of every quantity (`bins` trait). */
export const BINS = 32;
/** Histogrammed tensors of a layer, in sample-row order (`quantities` trait). */
export const QUANTITIES = ["weight", "bias", "weight_grad", "bias_grad"] as const;
/** Values per layer in a packed sample row: counts, scales, NaN counts, norms, update norms, activations. */
export const PER_LAYER = 4 * BINS + 4 + 4 + 4 + 2 + 5;
/** Columns of a step row before the metrics: step, seconds, loss. */
export const STEP_FIXED = 3;

export interface HistoryMessage {
  type: "history";
  run: number;
  reset: boolean;
  steps_from: number;
  samples_from: number;
  steps_shape: number[];
  samples_shape: number[];
  metrics: string[];
  layers: number;
}

/** Row width of a sample (step, then the packed statistics) for `layers` layers. */
export function sampleWidth(layers: number): number {
  return 1 + layers * PER_LAYER;
}

/** Rows of `stride` numbers in a typed array that doubles when full. */
class Rows<A extends Float64Array | Float32Array> {
  data: A;
  count = 0;
  base = 0;

  constructor(
    private readonly make: (size: number) => A,
    public stride: number,
  ) {
    this.data = make(0);
  }

  /** Keeps rows `[base, from)` (all of them when `from` is in or right after the window) and makes room. */
  placeAt(from: number, rows: number, reset: boolean): void {
    if (reset || this.count === 0 || from < this.base || from > this.base + this.count) {
      this.base = from;
      this.count = 0;
    } else {
      this.count = from - this.base;
    }
    const needed = (this.count + rows) * this.stride;
    if (needed > this.data.length) {
      const grown = this.make(Math.max(needed, 2 * this.data.length, 64 * this.stride));
      grown.set(this.data.subarray(0, this.count * this.stride));
      this.data = grown;
    }
  }

  /** Changes the row width (a new metric column): old rows are copied, new columns are NaN. */
  restride(stride: number): void {
    if (stride === this.stride) return;
    const next = this.make(Math.max(this.count, 64) * stride);
    next.fill(NaN);
    const keep = Math.min(stride, this.stride);
    for (let r = 0; r < this.count; r++) {
      next.set(this.data.subarray(r * this.stride, r * this.stride + keep), r * stride);
    }
    this.data = next;
    this.stride = stride;
  }
}

/** The bytes of a message buffer as a fresh, aligned ArrayBuffer. */
function bytesOf(buffer: ArrayBuffer | ArrayBufferView | undefined): ArrayBuffer {
  if (buffer === undefined) return new ArrayBuffer(0);
  if (buffer instanceof ArrayBuffer) return buffer.slice(0);
  const copy = new Uint8Array(buffer.byteLength);
  copy.set(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength));
  return copy.buffer;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function floats<A extends Float64Array | Float32Array>(
  bytes: ArrayBuffer,
  Kind: { new (b: ArrayBuffer): A; BYTES_PER_ELEMENT: number },
): A {
  if (!LITTLE_ENDIAN) {
    const view = new DataView(bytes);
    const size = Kind.BYTES_PER_ELEMENT;
    for (let i = 0; i + size <= bytes.byteLength; i += size) {
      if (size === 8) view.setFloat64(i, view.getFloat64(i, true));
      else view.setFloat32(i, view.getFloat32(i, true));
    }
  }
  return new Kind(bytes);
}

/** One run's steps and samples. */
export class RunHistory {
  readonly steps = new Rows((n) => new Float64Array(n), STEP_FIXED);
  readonly samples: Rows<Float32Array>;
  metrics: string[] = [];

  constructor(readonly layers: number) {
    this.samples = new Rows((n) => new Float32Array(n), sampleWidth(layers));
  }

  get stepCount(): number {
    return this.steps.count;
  }
  get sampleCount(): number {
    return this.samples.count;
  }
  /** Run-wide index of the first sample held. */
  get sampleBase(): number {
    return this.samples.base;
  }

  /** Step number of the `i`-th step held. */
  step(i: number): number {
    return this.steps.data[i * this.steps.stride];
  }
  seconds(i: number): number {
    return this.steps.data[i * this.steps.stride + 1];
  }
  loss(i: number): number {
    return this.steps.data[i * this.steps.stride + 2];
  }
  metric(i: number, name: string): number {
    const column = this.metrics.indexOf(name);
    return column < 0 ? NaN : this.steps.data[i * this.steps.stride + STEP_FIXED + column];
  }

  /** Step number of the `i`-th sample held. */
  sampleStep(i: number): number {
    return this.samples.data[i * this.samples.stride];
  }
  private at(i: number, offset: number): number {
    return this.samples.data[i * this.samples.stride + 1 + offset];
  }
  /** Histogram counts of quantity `q` of layer `l` in sample `i` (a view, `BINS` long). */
  counts(i: number, l: number, q: number): Float32Array {
    const start = i * this.samples.stride + 1 + (l * 4 + q) * BINS;
    return this.samples.data.subarray(start, start + BINS);
  }
  /** Half-width of the histogram of quantity `q` (NaN: the tensor is absent). */
  scale(i: number, l: number, q: number): number {
    return this.at(i, this.layers * 4 * BINS + l * 4 + q);
  }
  nanCount(i: number, l: number, q: number): number {
    return this.at(i, this.layers * (4 * BINS + 4) + l * 4 + q);
  }
  /** L2 norm of quantity `q` (NaN: absent). */
  norm(i: number, l: number, q: number): number {
    return this.at(i, this.layers * (4 * BINS + 8) + l * 4 + q);
  }
  /** `||W - W_prev|| / ||W_prev||` of the weight (NaN: not measured). */
  updateRatio(i: number, l: number): number {
    const offset = this.layers * (4 * BINS + 12) + l * 2;
    return this.at(i, offset) / this.at(i, offset + 1);
  }
  /** Activation statistic `k`: 0 count, 1 mean, 2 std, 3 dead fraction, 4 saturated fraction. */
  activation(i: number, l: number, k: number): number {
    return this.at(i, this.layers * (4 * BINS + 14) + l * 5 + k);
  }

  /** Held index of the last sample at or before `step` (-1 when none). */
  sampleAtOrBefore(step: number): number {
    let lo = 0;
    let hi = this.samples.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.sampleStep(mid) <= step) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}

/** Why a chunk was refused (it is then ignored and what is held stays as it was). */
export class HistoryError extends Error {}

/** Every run's history; `apply` takes one message with its two buffers. */
export class TrainingHistory {
  readonly runs: RunHistory[] = [];
  /** Chunks applied so far. */
  chunks = 0;

  run(index: number): RunHistory | undefined {
    return this.runs[index];
  }

  apply(message: HistoryMessage, buffers: ReadonlyArray<ArrayBuffer | ArrayBufferView>): RunHistory {
    const { run, layers } = message;
    if (!Number.isInteger(run) || run < 0 || !Number.isInteger(layers) || layers < 0) {
      throw new HistoryError(`bad history chunk: run ${run}, layers ${layers}`);
    }
    const [n, stepWidth = STEP_FIXED + message.metrics.length] = message.steps_shape;
    const [m, width = sampleWidth(layers)] = message.samples_shape;
    const stepBytes = bytesOf(buffers[0]);
    const sampleBytes = bytesOf(buffers[1]);
    if (stepBytes.byteLength !== n * stepWidth * 8) {
      throw new HistoryError(`steps buffer holds ${stepBytes.byteLength} bytes, not ${n} x ${stepWidth} float64`);
    }
    if (sampleBytes.byteLength !== m * width * 4) {
      throw new HistoryError(`samples buffer holds ${sampleBytes.byteLength} bytes, not ${m} x ${width} float32`);
    }
    if (n > 0 && stepWidth !== STEP_FIXED + message.metrics.length) {
      throw new HistoryError(`step rows have ${stepWidth} columns for ${message.metrics.length} metrics`);
    }
    if (m > 0 && width !== sampleWidth(layers)) {
      throw new HistoryError(`sample rows have ${width} values, not ${sampleWidth(layers)} for ${layers} layers`);
    }
    let history = this.runs[run];
    if (history === undefined || history.layers !== layers) {
      history = new RunHistory(layers);
      this.runs[run] = history;
    }
    // Metric names only ever grow at the end (the kernel keeps them in insertion order).
    if (message.metrics.length > history.metrics.length || message.reset) {
      history.metrics = [...message.metrics];
      history.steps.restride(STEP_FIXED + message.metrics.length);
    }
    const steps = floats(stepBytes, Float64Array);
    const stride = history.steps.stride;
    if (n > 0 || message.reset) {
      history.steps.placeAt(message.steps_from, n, message.reset);
      const target = history.steps;
      if (stepWidth === stride) target.data.set(steps, target.count * stride);
      else {
        for (let r = 0; r < n; r++) {
          const row = (target.count + r) * stride;
          target.data.fill(NaN, row, row + stride);
          target.data.set(steps.subarray(r * stepWidth, (r + 1) * stepWidth), row);
        }
      }
      target.count += n;
    }
    if (m > 0 || message.reset) {
      history.samples.placeAt(message.samples_from, m, message.reset);
      history.samples.data.set(floats(sampleBytes, Float32Array), history.samples.count * history.samples.stride);
      history.samples.count += m;
    }
    this.chunks += 1;
    return history;
  }
}

/** Is `content` a history chunk (as opposed to another custom message)? */
export function isHistoryMessage(content: unknown): content is HistoryMessage {
  if (content === null || typeof content !== "object") return false;
  const c = content as Record<string, unknown>;
  return (
    c.type === "history" &&
    typeof c.run === "number" &&
    Array.isArray(c.steps_shape) &&
    Array.isArray(c.samples_shape) &&
    Array.isArray(c.metrics) &&
    typeof c.layers === "number"
  );
}
