/** The 7 FER2013 classes, in the model's output order (the model card repeats this order). */
export const EMOTIONS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'] as const;
export type Emotion = (typeof EMOTIONS)[number];
export type EmotionScores = Record<Emotion, number>;

export function scoresFromArray(probabilities: ArrayLike<number>): EmotionScores {
  if (probabilities.length !== EMOTIONS.length) {
    throw new Error(`expected ${EMOTIONS.length} probabilities, got ${probabilities.length}`);
  }
  const scores = {} as EmotionScores;
  EMOTIONS.forEach((label, i) => {
    scores[label] = probabilities[i]!;
  });
  return scores;
}

export function dominantEmotion(scores: EmotionScores): Emotion {
  let best: Emotion = EMOTIONS[0];
  for (const label of EMOTIONS) if (scores[label] > scores[best]) best = label;
  return best;
}

/**
 * One face's 7 outputs as scores that sum to 1: softmax output in float32 can be off by ~1e-7,
 * and clients are promised probabilities.
 */
export function normalisedScores(p: ArrayLike<number>): EmotionScores {
  if (p.length !== EMOTIONS.length) throw new Error(`expected ${EMOTIONS.length} probabilities, got ${p.length}`);
  const values = Array.from(p, (v) => (Number.isFinite(v) && v > 0 ? v : 0));
  const sum = values.reduce((a, b) => a + b, 0);
  return scoresFromArray(sum > 0 ? values.map((v) => v / sum) : values.map(() => 1 / values.length));
}
