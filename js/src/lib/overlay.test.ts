import { describe, expect, it } from "vitest";
import { MAX_CODE, MIDDLE_CODE, NON_FINITE_CODE } from "./decode";
import { magnitudeAlpha } from "./overlay";

describe("magnitudeAlpha", () => {
  const alpha = magnitudeAlpha();

  it("is transparent at zero and opaque at both ends of the symmetric scale", () => {
    expect(alpha[MIDDLE_CODE]).toBe(0);
    expect(alpha[0]).toBe(255);
    expect(alpha[MAX_CODE]).toBe(255);
    expect(alpha[NON_FINITE_CODE]).toBe(255);
  });

  it("is symmetric and grows with the magnitude", () => {
    for (let step = 1; step <= MIDDLE_CODE; step++) {
      expect(alpha[MIDDLE_CODE + step]).toBe(alpha[MIDDLE_CODE - step]);
      expect(alpha[MIDDLE_CODE + step]).toBeGreaterThan(alpha[MIDDLE_CODE + step - 1]);
    }
  });
});
