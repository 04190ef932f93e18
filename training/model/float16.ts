import type * as tf from '@tensorflow/tfjs';

/** IEEE 754 half precision bits of a float32, rounded to nearest even. */
export function toFloat16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    return sign | (half + (rest > halfway || (rest === halfway && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/**
 * Rewrites float32 weights as float16 (tfjs' weight manifest `quantization: {dtype: 'float16'}`,
 * which every tfjs loader decodes back to float32): half the bytes on disk, same topology.
 */
export function quantizeArtifactsToFloat16(artifacts: tf.io.ModelArtifacts): tf.io.ModelArtifacts {
  const specs = artifacts.weightSpecs ?? [];
  const data = artifacts.weightData;
  if (!data || Array.isArray(data)) throw new Error('expected one weights buffer');
  const src = new Float32Array(data as ArrayBuffer);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = toFloat16Bits(src[i]!);
  for (const spec of specs) if (spec.dtype !== 'float32') throw new Error(`cannot quantise ${spec.name} (${spec.dtype})`);
  return {
    ...artifacts,
    weightSpecs: specs.map((spec) => ({ ...spec, quantization: { dtype: 'float16' as const } })),
    weightData: out.buffer,
  };
}
