/** What shapes a video job's results, as the timeline JSON reports it (VideoAnalysisSettings). */
import type { VideoAnalysisSettings } from '../../contract/http.ts';
import type { Config } from '../config.ts';
import type { DetectorSpec } from '../pipeline/detect.ts';

/** A detector as its setting spells it: `ssd`, `blazeface`, `tiny:416`. */
export function describeDetector(spec: DetectorSpec): string {
  return spec.kind === 'tiny' ? `tiny:${spec.inputSize}` : spec.kind;
}

export function videoAnalysisSettings(config: Pick<Config, 'detectors' | 'minFaceSize' | 'video' | 'tracking'>, modelVersion: string): VideoAnalysisSettings {
  return {
    modelVersion,
    detector: describeDetector(config.detectors.video),
    minFaceSize: config.minFaceSize,
    maxSidePx: config.video.maxSidePx,
    trackMaxAgeMs: config.tracking.maxAgeMs,
    smoothingTauMs: config.tracking.smoothingTauMs,
    sceneCutThreshold: config.tracking.sceneCutThreshold,
  };
}
