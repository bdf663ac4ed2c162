// A hover tooltip positioned inside a `position: relative` container. Text goes in with textContent only:
// values are numbers, but layer names and labels shown through it come from users.

export class Tooltip {
  readonly el: HTMLDivElement;

  constructor(container: HTMLElement) {
    this.el = document.createElement("div");
    this.el.className = "mvz-tooltip";
    this.el.hidden = true;
    container.appendChild(this.el);
  }

  /** Shows `text` near (x, y), in CSS pixels from the container's top-left corner. */
  show(text: string, x: number, y: number): void {
    if (this.el.textContent !== text) this.el.textContent = text;
    this.el.style.left = `${Math.round(x + 12)}px`;
    this.el.style.top = `${Math.round(y + 12)}px`;
    this.el.hidden = false;
  }

  hide(): void {
    this.el.hidden = true;
  }
}
