import { describe, expect, it } from "vitest";
import {
  as2d,
  decode,
  describeValue,
  formatNumber,
  halfToFloat,
  readMeta,
  readPayload,
  toCodes,
  type Meta,
} from "./decode";

function meta(overrides: Partial<Meta>): Meta {
  const shape = overrides.shape ?? [2, 2];
  return {
    shape,
    dtype: "uint8",
    vmin: 0,
    vmax: 1,
    scale: "linear",
    nan_count: 0,
    posinf_count: 0,
    neginf_count: 0,
    seq: 1,
    downsampled: false,
    original_shape: shape,
    note: "",
    ...overrides,
  };
}

/** A DataView over `payload`, placed `offset` bytes into a larger buffer padded with junk on both sides. */
function embedded(payload: Uint8Array, offset: number): DataView {
  const buffer = new ArrayBuffer(offset + payload.length + 7);
  const all = new Uint8Array(buffer);
  all.fill(0xab);
  all.set(payload, offset);
  return new DataView(buffer, offset, payload.length);
}

function float32Bytes(values: number[]): Uint8Array {
  const view = new DataView(new ArrayBuffer(values.length * 4));
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return new Uint8Array(view.buffer);
}

function float16Bytes(bits: number[]): Uint8Array {
  const out = new Uint8Array(bits.length * 2);
  bits.forEach((b, i) => {
    out[2 * i] = b & 0xff;
    out[2 * i + 1] = b >> 8;
  });
  return out;
}

describe("uint8 payloads", () => {
  it("reads codes through the view's offset, not from the start of the buffer", () => {
    const view = embedded(new Uint8Array([0, 127, 254, 255]), 13);
    const payload = decode(view, meta({ vmin: -2, vmax: 2 }));
    expect(Array.from(payload.codes!)).toEqual([0, 127, 254, 255]);
    expect(payload.shape).toEqual([2, 2]);
    expect(payload.size).toBe(4);
  });

  it("maps codes linearly onto [vmin, vmax] and code 255 to NaN", () => {
    const payload = decode(embedded(new Uint8Array([0, 127, 254, 255]), 5), meta({ vmin: -2, vmax: 2 }));
    expect(payload.value(0)).toBe(-2);
    expect(payload.value(1)).toBeCloseTo(-2 + (127 * 4) / 254, 12);
    expect(payload.value(2)).toBeCloseTo(2, 12);
    expect(payload.value(3)).toBeNaN();
  });

  it("keeps the codes as they are for drawing", () => {
    const payload = decode(embedded(new Uint8Array([3, 9, 254, 255]), 1), meta({}));
    expect(Array.from(toCodes(payload))).toEqual([3, 9, 254, 255]);
  });

  it("draws constant signed data in the neutral middle", () => {
    const payload = decode(
      embedded(new Uint8Array([0, 0, 0, 255]), 2),
      meta({ vmin: 0, vmax: 0, scale: "symmetric" }),
    );
    expect(Array.from(toCodes(payload))).toEqual([127, 127, 127, 255]);
  });

  it("says which kind of non-finite value code 255 is when the counts tell", () => {
    const bytes = new Uint8Array([0, 255, 10, 20]);
    const onlyNaN = decode(embedded(bytes, 0), meta({ nan_count: 1 }));
    const onlyNegInf = decode(embedded(bytes, 0), meta({ neginf_count: 1 }));
    const mixed = decode(embedded(bytes, 0), meta({ nan_count: 1, posinf_count: 2 }));
    expect(describeValue(onlyNaN, 1)).toBe("NaN");
    expect(describeValue(onlyNegInf, 1)).toBe("-Inf");
    expect(describeValue(mixed, 1)).toBe("non-finite");
    expect(describeValue(mixed, 0)).toBe("0");
  });
});

describe("float32 payloads", () => {
  const values = [1.5, -0.25, NaN, Infinity, -Infinity, 3e-5];

  it.each([0, 4, 1, 3, 6])("decodes little-endian values at byte offset %i", (offset) => {
    const view = embedded(float32Bytes(values), offset);
    const payload = decode(view, meta({ shape: [2, 3], dtype: "float32", vmin: -0.25, vmax: 1.5 }));
    expect(payload.codes).toBeNull();
    expect(payload.value(0)).toBe(1.5);
    expect(payload.value(1)).toBe(-0.25);
    expect(payload.value(2)).toBeNaN();
    expect(payload.value(3)).toBe(Infinity);
    expect(payload.value(4)).toBe(-Infinity);
    expect(payload.value(5)).toBeCloseTo(3e-5, 10);
  });

  it("quantizes to codes 0..254 over [vmin, vmax] and 255 for every non-finite value", () => {
    const view = embedded(float32Bytes(values), 3);
    const payload = decode(view, meta({ shape: [6], dtype: "float32", vmin: -0.25, vmax: 1.5 }));
    const codes = Array.from(toCodes(payload));
    expect(codes).toEqual([254, 0, 255, 255, 255, Math.round(((3e-5 + 0.25) * 254) / 1.75)]);
  });

  it("describes non-finite values exactly", () => {
    const payload = decode(embedded(float32Bytes(values), 2), meta({ shape: [6], dtype: "float32" }));
    expect([2, 3, 4].map((i) => describeValue(payload, i))).toEqual(["NaN", "+Inf", "-Inf"]);
    expect(describeValue(payload, 0)).toBe("1.5");
  });
});

describe("float16 payloads", () => {
  it("converts half-precision bit patterns, subnormals and specials included", () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x3555)).toBeCloseTo(0.33325, 5);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });

  it("decodes a payload at an odd byte offset", () => {
    const bits = [0x3c00, 0xb800, 0x7e00, 0x7c00, 0xfc00, 0x0000];
    const view = embedded(float16Bytes(bits), 7);
    const payload = decode(view, meta({ shape: [3, 2], dtype: "float16", vmin: -0.5, vmax: 1 }));
    expect(Array.from(payload.values!.slice(0, 2))).toEqual([1, -0.5]);
    expect(payload.value(2)).toBeNaN();
    expect(payload.value(3)).toBe(Infinity);
    expect(payload.value(4)).toBe(-Infinity);
    expect(Array.from(toCodes(payload))).toEqual([254, 0, 255, 255, 255, Math.round((0.5 * 254) / 1.5)]);
  });
});

describe("metadata and errors", () => {
  it("rejects bytes that do not match the shape, naming both", () => {
    expect(() => decode(embedded(new Uint8Array(5), 0), meta({ shape: [2, 2] }))).toThrow(
      /5 bytes .*\[2, 2\].*4 bytes expected/,
    );
    expect(() =>
      decode(embedded(new Uint8Array(8), 0), meta({ shape: [2, 2], dtype: "float32" })),
    ).toThrow(/16 bytes expected/);
  });

  it("treats an empty trait as nothing to draw", () => {
    expect(readMeta({})).toBeNull();
    expect(readPayload(new DataView(new ArrayBuffer(0)), {})).toBeNull();
    expect(readPayload(new DataView(new ArrayBuffer(0)), { shape: [2, 2] })).toBeNull();
  });

  it("rejects unknown dtypes with the valid ones listed", () => {
    expect(() => readMeta({ shape: [1], dtype: "int64" })).toThrow(/uint8, float16, float32/);
  });

  it("fills defaults for missing optional keys", () => {
    const read = readMeta({ shape: [3, 4], dtype: "float32", vmin: -1, vmax: 1, scale: "symmetric" })!;
    expect(read.original_shape).toEqual([3, 4]);
    expect(read.nan_count).toBe(0);
    expect(read.note).toBe("");
    expect(read.scale).toBe("symmetric");
  });

  it("decodes from a typed array too (static exports may hold one)", () => {
    const outer = new Uint8Array([9, 9, 1, 2, 3, 4, 9]);
    const payload = readPayload(outer.subarray(2, 6), { shape: [4], dtype: "uint8", vmin: 0, vmax: 254 })!;
    expect(Array.from(payload.codes!)).toEqual([1, 2, 3, 4]);
  });

  it("stacks leading dimensions as rows", () => {
    expect(as2d([56, 56])).toEqual([56, 56]);
    expect(as2d([1, 128])).toEqual([1, 128]);
    expect(as2d([128])).toEqual([1, 128]);
    expect(as2d([2, 3, 4])).toEqual([6, 4]);
  });

  it("formats numbers compactly", () => {
    expect(formatNumber(0.123456)).toBe("0.1235");
    expect(formatNumber(-2)).toBe("-2");
    expect(formatNumber(123456)).toBe("1.23e+5");
    expect(formatNumber(0.00001234)).toBe("1.23e-5");
  });
});
