// The model object a view gets in a static export: anywidget's AFM model interface over saved state.
// Nothing answers in the page, so `save_changes` and `send` go to the export runtime, which applies a
// recorded frame or says that the control needs the live kernel.

type Handler = (...args: unknown[]) => void;

export interface ExportModelHooks {
  /** Called after `save_changes` with the traits set since the previous one. */
  onSave?(names: string[]): void;
  /** Called by `send` (a view asking the kernel something). */
  onSend?(content: unknown): void;
}

const NO_MANAGER = {
  get_model(): Promise<never> {
    return Promise.reject(new Error("static export: there are no other widget models"));
  },
};

export class ExportModel {
  readonly widget_manager = NO_MANAGER;
  private readonly values = new Map<string, unknown>();
  private readonly handlers = new Map<string, Set<Handler>>();
  private changed = new Set<string>();

  constructor(
    state: Record<string, unknown>,
    private readonly hooks: ExportModelHooks = {},
  ) {
    for (const [name, value] of Object.entries(state)) this.values.set(name, value);
  }

  get(name: string): any {
    return this.values.get(name);
  }

  /** Sets a trait as a view does: change events at once (as Backbone's set), remembered for saving. */
  set(name: string, value: unknown): void {
    const before = this.values.get(name);
    this.values.set(name, value);
    if (before !== value) this.changed.add(name);
    this.fire(`change:${name}`, value);
    this.fire("change");
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  on(event: string, callback: Handler): void {
    let set = this.handlers.get(event);
    if (set === undefined) this.handlers.set(event, (set = new Set()));
    set.add(callback);
  }

  off(event?: string | null, callback?: Handler | null): void {
    if (event == null) {
      if (callback == null) this.handlers.clear();
      else for (const set of this.handlers.values()) set.delete(callback);
      return;
    }
    if (callback == null) this.handlers.delete(event);
    else this.handlers.get(event)?.delete(callback);
  }

  save_changes(): void {
    const names = [...this.changed];
    this.changed = new Set();
    if (names.length > 0) this.hooks.onSave?.(names);
  }

  send(content: unknown): void {
    this.hooks.onSend?.(content);
  }

  /** Sets several traits as one kernel message would: all values first, then one event per trait. */
  apply(updates: Record<string, unknown>): void {
    const names = Object.keys(updates);
    for (const name of names) this.values.set(name, updates[name]);
    for (const name of names) this.fire(`change:${name}`, updates[name]);
    if (names.length > 0) this.fire("change");
  }

  /** Delivers a custom message as the kernel would (`msg:custom`). */
  deliver(content: unknown, buffers: DataView[]): void {
    this.fire("msg:custom", content, buffers);
  }

  listenerCount(event: string): number {
    return this.handlers.get(event)?.size ?? 0;
  }

  private fire(event: string, ...args: unknown[]): void {
    const set = this.handlers.get(event);
    if (set === undefined) return;
    for (const handler of [...set]) handler(...(event === "msg:custom" ? args : [this, ...args]));
  }
}

/**
 * The trait values that put every view into one recorded state: for each view, each trait any frame
 * touches (plus `extra`) takes the frame's value when the frame has one and the base value otherwise.
 */
export function frameTargets(
  base: Record<string, Record<string, unknown>>,
  touched: Record<string, Iterable<string>>,
  frame: Record<string, Record<string, unknown>>,
  extra: readonly string[] = [],
): Record<string, Record<string, unknown>> {
  const targets: Record<string, Record<string, unknown>> = {};
  for (const id of Object.keys(base)) {
    const names = new Set([...(touched[id] ?? []), ...Object.keys(frame[id] ?? {})]);
    for (const name of extra) if (name in base[id]) names.add(name);
    const target: Record<string, unknown> = {};
    for (const name of names) {
      const own = frame[id];
      target[name] = own !== undefined && name in own ? own[name] : base[id][name];
    }
    targets[id] = target;
  }
  return targets;
}

/** Only the updates whose value differs from what the model holds (by identity; primitives by value). */
export function pendingUpdates(
  model: { get(name: string): unknown },
  target: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(target)) {
    if (!Object.is(model.get(name), value)) out[name] = value;
  }
  return out;
}
