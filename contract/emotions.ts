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
