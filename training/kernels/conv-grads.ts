/**
 * Conv2D gradients for the wasm backend, written as forward convolutions.
 *
 * tfjs-backend-wasm 4.22 ships no Conv2DBackpropFilter kernel (so conv nets cannot train on it) and
 * its Conv2DBackpropInput is ~10x slower than its XNNPACK forward Conv2D (shared/notes/training-on-wasm.md).
 * Both gradients are convolutions in disguise:
 *   dW = conv(x with batch<->channel swapped, dy as the filter), valid padding, dilated by the stride;
 *   dx = conv(dy, W flipped spatially with in/out channels swapped), for stride 1.
 * They run on the backend's fast forward Conv2D. Cases outside these identities keep the shipped
 * dx kernel; dW covers every stride and padding the layers API produces (NHWC, dilation 1).
 */
import * as tf from '@tensorflow/tfjs';

type ConvAttrs = {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  /** absent on the backprop kernels' attrs (always 1 there) */
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

function pair(value: number | [number, number]): [number, number] {
  return typeof value === 'number' ? [value, value] : value;
}

/** dW[kh, kw, Cin, Cout] from x[B, H, W, Cin] and dy[B, OH, OW, Cout]. */
export function conv2dFilterGradient(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  attrs: ConvAttrs,
): tf.Tensor4D {
  const [strideH, strideW] = pair(attrs.strides);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape,
    filterShape,
    [strideH, strideW],
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const [kh, kw] = filterShape;
  return tf.tidy(() => {
    const { top, bottom, left, right } = info.padInfo;
    const padded = tf.pad(x, [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ]);
    const xT = tf.transpose(padded, [3, 1, 2, 0]); // [Cin, H+, W+, B]: batch becomes channels
    const dyT = tf.transpose(dy, [1, 2, 0, 3]); // [OH, OW, B, Cout]: dy is the filter
    const full = tf.conv2d(xT, dyT, 1, 'valid', 'NHWC', [strideH, strideW]); // [Cin, >=kh, >=kw, Cout]
    const cropped = full.shape[1] === kh && full.shape[2] === kw ? full : tf.slice(full, [0, 0, 0, 0], [-1, kh, kw, -1]);
    return tf.transpose(cropped, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/** dx for stride 1, dilation 1, 'same' or 'valid' padding: a forward conv of dy with the flipped filter. */
export function conv2dInputGradient(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: [number, number, number, number],
  attrs: ConvAttrs,
): tf.Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, 1, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  const [kh, kw] = filter.shape;
  return tf.tidy(() => {
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    // The forward pad (top, left) becomes (kh-1-top, kw-1-left) on the transposed problem.
    const { top, left } = info.padInfo;
    const padTop = kh - 1 - top;
    const padLeft = kw - 1 - left;
    const [, inH, inW] = inputShape;
    const padBottom = inH + kh - 1 - dy.shape[1] - padTop;
    const padRight = inW + kw - 1 - dy.shape[2] - padLeft;
    const padded = tf.pad(dy, [
      [0, 0],
      [padTop, padBottom],
      [padLeft, padRight],
      [0, 0],
    ]);
    return tf.conv2d(padded, flipped, 1, 'valid');
  });
}

function isUnitStride(attrs: ConvAttrs): boolean {
  const [sh, sw] = pair(attrs.strides);
  const [dh, dw] = pair(attrs.dilations ?? 1);
  return sh === 1 && sw === 1 && dh === 1 && dw === 1;
}

let registeredFor: string | undefined;

/** Registers both gradient kernels on `backendName` (default wasm). Idempotent. */
export function registerConvGradientKernels(backendName = 'wasm'): void {
  if (registeredFor === backendName) return;
  const shippedInputKernel = tf.getKernel('Conv2DBackpropInput', backendName);

  if (tf.getKernel('Conv2DBackpropFilter', backendName)) tf.unregisterKernel('Conv2DBackpropFilter', backendName);
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName,
    kernelFunc: ({ inputs, attrs }) => {
      const { x, dy } = inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
      const a = attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
      if (a.dataFormat !== 'NHWC' || pair(a.dilations ?? 1).some((d) => d !== 1)) {
        throw new Error('Conv2DBackpropFilter on wasm supports NHWC and dilation 1 only');
      }
      return conv2dFilterGradient(x, dy, a.filterShape, a);
    },
  });

  if (shippedInputKernel) tf.unregisterKernel('Conv2DBackpropInput', backendName);
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName,
    kernelFunc: (args) => {
      const a = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
      const { dy, filter } = args.inputs as { dy: tf.Tensor4D; filter: tf.Tensor4D };
      if (a.dataFormat === 'NHWC' && isUnitStride(a) && (a.pad === 'same' || a.pad === 'valid')) {
        return conv2dInputGradient(dy, filter, a.inputShape, a);
      }
      if (!shippedInputKernel) throw new Error('no Conv2DBackpropInput kernel for this configuration');
      return shippedInputKernel.kernelFunc(args);
    },
  });
  registeredFor = backendName;
}
