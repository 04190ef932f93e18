/** The tfjs backends a setting may name (EMOTION_BACKEND, --backend); apart from backend.ts so that reading them loads no tfjs. */
export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
