// Decoding of the binary payloads described in docs/wire-and-dom.md.
//
// A payload is a synced bytes trait (a DataView in the browser) plus a metadata dict. The DataView may
// point into the middle of a larger buffer (the comm message's), so every read goes through its
// byteOffset/byteLength and never through `view.buffer` alone.

export type Dtype = "uint8" | "float16" | "float32";
export type Scale = "linear" | "symmetric";

/** The metadata dict written by `modelviz_widgets.wire.encode`, one key per row of the contract. */
export interface Meta {
  /** C-order shape of the payload. */
  shape: number[];
  dtype: Dtype;
  /** Range of the finite values (0, 0 when nothing is finite). */
  vmin: number;
  vmax: number;
  /** "symmetric" marks signed data with vmin == -vmax, drawn with the diverging map. */
  scale: Scale;
  nan_count: number;
  posinf_count: number;
  neginf_count: number;
  /** Update number of the widget, increasing. */
  seq: number;
  /** True when the byte budget forced a smaller picture than the original. */
  downsampled: boolean;
  original_shape: number[];
  /** A sentence to show when downsampled ("" otherwise). */
  note: string;
  /** Only on input payloads: a [3, H, W] picture to draw as colour. */
  rgb?: boolean;
}

/** A decoded payload: shape, raw codes (uint8 only) and exact values (float only). */
export interface Payload {
  meta: Meta;
  shape: number[];
  dtype: Dtype;
  /** Number of elements. */
  size: number;
  /** uint8 codes 0..254 (+255 non-finite), a view on the message bytes; null for float payloads. */
  codes: Uint8Array | null;
  /** Exact values of float16/float32 payloads; null for uint8. */
  values: Float32Array | null;
  /** The value at a flat C-order index; NaN for uint8 code 255. */
  value(index: number): number;
}

/** Code reserved for non-finite values in uint8 payloads and in the colour lookup tables. */
export const NON_FINITE_CODE = 255;
/** Finite values are quantized onto codes 0..MAX_CODE. */
export const MAX_CODE = 254;
/** Middle code: value 0 of symmetric data, white in the diverging map. */
export const MIDDLE_CODE = 127;

const DTYPES: readonly Dtype[] = ["uint8", "float16", "float32"];
const BYTES_PER_ELEMENT: Record<Dtype, number> = { uint8: 1, float16: 2, float32: 4 };

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function finiteOr(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

function intList(value: unknown): number[] | null {
  if (!Array.isArray(value)) return null;
  const out: number[] = [];
  for (const item of value) {
    if (typeof item !== "number" || !Number.isInteger(item) || item < 0) return null;
    out.push(item);
  }
  return out;
}

/**
 * Reads a metadata dict as it arrives from the kernel. Returns null when it has no shape (a trait still
 * at its empty default); missing optional keys get neutral defaults so an older writer still draws.
 */
export function readMeta(raw: unknown): Meta | null {
  if (raw === null || typeof raw !== "object") return null;
  const obj = raw as Record<string, unknown>;
  const shape = intList(obj.shape);
  if (shape === null) return null;
  const dtype = obj.dtype === undefined ? "uint8" : obj.dtype;
  if (!DTYPES.includes(dtype as Dtype)) {
    throw new Error(`unknown payload dtype ${JSON.stringify(dtype)}; expected one of ${DTYPES.join(", ")}`);
  }
  const meta: Meta = {
    shape,
    dtype: dtype as Dtype,
    vmin: finiteOr(obj.vmin, 0),
    vmax: finiteOr(obj.vmax, 0),
    scale: obj.scale === "symmetric" ? "symmetric" : "linear",
    nan_count: finiteOr(obj.nan_count, 0),
    posinf_count: finiteOr(obj.posinf_count, 0),
    neginf_count: finiteOr(obj.neginf_count, 0),
    seq: finiteOr(obj.seq, 0),
    downsampled: obj.downsampled === true,
    original_shape: intList(obj.original_shape) ?? shape,
    note: typeof obj.note === "string" ? obj.note : "",
  };
  if (obj.rgb === true) meta.rgb = true;
  return meta;
}

/** Bytes of a view, honouring its offset and length. */
export function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Accepts what a bytes trait may hold (DataView from ipywidgets, typed arrays in exports). */
export function asDataView(data: unknown): DataView | null {
  if (data instanceof DataView) return data;
  if (ArrayBuffer.isView(data)) return new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new DataView(data);
  return null;
}

// float16 -> float32 for all 65536 bit patterns, built on first use: one lookup per element afterwards.
let halfTable: Float32Array | null = null;

/** Converts IEEE 754 binary16 bits to a number (subnormals, signed zero, Inf and NaN included). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function halfLookup(): Float32Array {
  if (halfTable === null) {
    halfTable = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) halfTable[bits] = halfToFloat(bits);
  }
  return halfTable;
}

function decodeFloat16(bytes: Uint8Array, size: number): Float32Array {
  const table = halfLookup();
  const out = new Float32Array(size);
  // Byte-wise reads: independent of alignment and of the host's byte order.
  for (let i = 0, j = 0; i < size; i++, j += 2) out[i] = table[bytes[j] | (bytes[j + 1] << 8)];
  return out;
}

function decodeFloat32(bytes: Uint8Array, size: number): Float32Array {
  if (!LITTLE_ENDIAN_HOST) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  // A Float32Array view needs a 4-byte aligned offset; otherwise copy the bytes to a fresh buffer.
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, size);
  return new Float32Array(bytes.slice().buffer, 0, size);
}

/** Number of elements of a shape (1 for a scalar shape []). */
export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) size *= dim;
  return size;
}

/** Decodes one payload. Throws with a message naming the mismatch when bytes and shape disagree. */
export function decode(view: DataView, meta: Meta): Payload {
  const size = sizeOf(meta.shape);
  const expected = size * BYTES_PER_ELEMENT[meta.dtype];
  if (view.byteLength !== expected) {
    throw new Error(
      `payload of ${view.byteLength} bytes does not match shape [${meta.shape.join(", ")}] ` +
        `of ${meta.dtype} (${expected} bytes expected)`,
    );
  }
  const bytes = bytesOf(view);
  if (meta.dtype === "uint8") {
    const { vmin } = meta;
    const step = (meta.vmax - meta.vmin) / MAX_CODE;
    return {
      meta,
      shape: meta.shape,
      dtype: meta.dtype,
      size,
      codes: bytes,
      values: null,
      value: (index) => {
        const code = bytes[index];
        return code === NON_FINITE_CODE ? NaN : vmin + code * step;
      },
    };
  }
  const values = meta.dtype === "float16" ? decodeFloat16(bytes, size) : decodeFloat32(bytes, size);
  return {
    meta,
    shape: meta.shape,
    dtype: meta.dtype,
    size,
    codes: null,
    values,
    value: (index) => values[index],
  };
}

/** Decodes a (bytes trait, meta trait) pair; null while either is still empty. */
export function readPayload(data: unknown, rawMeta: unknown): Payload | null {
  const meta = readMeta(rawMeta);
  const view = asDataView(data);
  if (meta === null || view === null) return null;
  if (view.byteLength === 0 && sizeOf(meta.shape) !== 0) return null;
  return decode(view, meta);
}

/**
 * Colour codes for a payload: 0..254 spread linearly over [vmin, vmax], 255 for NaN/±Inf, so that
 * drawing is one lookup-table read per element. uint8 payloads already are codes and are returned as is.
 */
export function toCodes(payload: Payload): Uint8Array {
  const { vmin, vmax, scale } = payload.meta;
  if (payload.codes !== null) {
    // Every code means vmin when the range is empty; signed data then shows as the neutral middle.
    if (!(vmax - vmin > 0) && scale === "symmetric") {
      return payload.codes.map((code) => (code === NON_FINITE_CODE ? code : MIDDLE_CODE));
    }
    return payload.codes;
  }
  const values = payload.values as Float32Array;
  const codes = new Uint8Array(values.length);
  const span = vmax - vmin;
  if (!(span > 0)) {
    // Constant data: the middle (white) of the diverging map for signed data, the low end otherwise.
    const flat = scale === "symmetric" ? MIDDLE_CODE : 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      codes[i] = v - v === 0 ? flat : NON_FINITE_CODE;
    }
    return codes;
  }
  const perUnit = MAX_CODE / span;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // v - v is NaN exactly for NaN and ±Inf: one test covers every non-finite value.
    if (v - v !== 0) {
      codes[i] = NON_FINITE_CODE;
      continue;
    }
    const code = Math.round((v - vmin) * perUnit);
    codes[i] = code < 0 ? 0 : code > MAX_CODE ? MAX_CODE : code;
  }
  return codes;
}

/** Formats a finite number compactly for labels and tooltips. */
export function formatNumber(value: number): string {
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e4 || magnitude < 1e-3) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

/**
 * Text for the value at a flat index. uint8 code 255 only says "non-finite" unless the counts in the
 * metadata show which kind of non-finite value the payload holds.
 */
export function describeValue(payload: Payload, index: number): string {
  if (payload.codes !== null && payload.codes[index] === NON_FINITE_CODE) {
    const { nan_count, posinf_count, neginf_count } = payload.meta;
    if (posinf_count === 0 && neginf_count === 0 && nan_count > 0) return "NaN";
    if (nan_count === 0 && neginf_count === 0 && posinf_count > 0) return "+Inf";
    if (nan_count === 0 && posinf_count === 0 && neginf_count > 0) return "-Inf";
    return "non-finite";
  }
  const value = payload.value(index);
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return formatNumber(value);
}

/** Height and width of a payload drawn as a 2-D map: leading dimensions are stacked as rows. */
export function as2d(shape: readonly number[]): [number, number] {
  if (shape.length === 0) return [1, 1];
  const width = shape[shape.length - 1];
  return [sizeOf(shape.slice(0, -1)), width];
}
