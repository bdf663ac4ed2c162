// Reading the state embedded in a static export page (modelviz_widgets/export.py): base64 buffers put
// back at their paths as DataViews, as ipywidgets does with the buffers of a comm message.

/** One binary value of a widget's state: where it goes and its bytes as base64. */
export interface EmbeddedBuffer {
  path: Array<string | number>;
  data: string;
}

/** A widget's state as embedded: JSON values plus the binary ones split out. */
export interface EmbeddedState {
  state: Record<string, unknown>;
  buffers: EmbeddedBuffer[];
}

/** Bytes of a base64 string (standard alphabet, padded or not). */
export function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A deep copy of `state` with each buffer set at its path as a DataView (the shape views read). */
export function decodeState(embedded: EmbeddedState): Record<string, unknown> {
  const state = structuredClone(embedded.state ?? {}) as Record<string, unknown>;
  for (const buffer of embedded.buffers ?? []) {
    const { path } = buffer;
    if (!Array.isArray(path) || path.length === 0) throw new Error("an embedded buffer has no path");
    const bytes = base64ToBytes(buffer.data);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let target: Record<string | number, unknown> = state;
    for (const key of path.slice(0, -1)) {
      const next = target[key];
      if (next === null || typeof next !== "object") {
        throw new Error(`embedded buffer path ${JSON.stringify(path)} does not match the state`);
      }
      target = next as Record<string | number, unknown>;
    }
    target[path[path.length - 1]] = view;
  }
  return state;
}

/** The key under which a frame is stored for a trait value: its JSON text, as Python writes it. */
export function frameKey(value: unknown): string {
  return JSON.stringify(value) ?? "null";
}
