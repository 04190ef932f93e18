import assert from 'node:assert/strict';
import { test } from 'node:test';
import { augmentInto, createRng, DEFAULT_AUGMENT, type AugmentOptions } from '../training/augment.ts';

const NONE: AugmentOptions = { flip: false, rotateDeg: 0, shift: 0, zoom: 0 };

/** A linear ramp: bilinear sampling reproduces a linear image exactly, so expected values are closed-form. */
function ramp(): Uint8Array {
  const src = new Uint8Array(48 * 48);
  for (let y = 0; y < 48; y++) for (let x = 0; x < 48; x++) src[y * 48 + x] = 2 * x + 3 * y;
  return src;
}

test('without augmentation a 48x48 face is copied unchanged', () => {
  const src = ramp();
  const out = new Float32Array(48 * 48);
  augmentInto(src, 0, out, 0, createRng(1), NONE);
  assert.deepEqual(Array.from(out), Array.from(src));
});

test('a 32x32 rendering samples the whole face at 1.5 source pixels per pixel', () => {
  const src = ramp();
  const out = new Float32Array(32 * 32);
  augmentInto(src, 0, out, 0, createRng(1), NONE, 32);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      const sx = 23.5 + (x - 15.5) * 1.5;
      const sy = 23.5 + (y - 15.5) * 1.5;
      assert.ok(Math.abs(out[y * 32 + x]! - (2 * sx + 3 * sy)) < 1e-3, `pixel ${x},${y}`);
    }
  }
});

test('the random draws do not depend on the output size, so a seed picks the same augmentation', () => {
  const src = ramp();
  const small = createRng(9);
  const full = createRng(9);
  augmentInto(src, 0, new Float32Array(32 * 32), 0, small, DEFAULT_AUGMENT, 32);
  augmentInto(src, 0, new Float32Array(48 * 48), 0, full, DEFAULT_AUGMENT);
  assert.equal(small(), full());
});
