/**
 * A training run writes a candidate, never the served model; `promote` serves a candidate only if
 * it is not worse on PublicTest than the served model (both scored on the same rows), keeps the
 * replaced model for rollback, and `--rollback` swaps them back. Models are trained here on a tiny
 * learnable FER-format csv (bright faces "happy", dark ones "sad").
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { readModelCard } from '../contract/model-card.ts';
import { DEFAULT_CANDIDATE_DIR, previousDir, promote, PromotionRefused, rollback } from '../training/promote.ts';
import { train, trainCommand, type TrainOptions, withRunDefaults } from '../training/train.ts';
import { tinyTrainOptions, writeTinyFer } from './training-support.ts';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '..');

describe('training candidates and promotion', { timeout: 600_000 }, () => {
  let dir: string;
  let good: string;
  let bad: string;
  const quiet = (): void => undefined;

  // Plain and deterministic: one worker, no augmentation, float32 weights, single faces.
  const options = (extra: Partial<TrainOptions>): TrainOptions =>
    withRunDefaults(
      tinyTrainOptions(dir, {
        workers: 1,
        labelSmoothing: 0,
        classWeightPower: 0,
        augment: false,
        rotate: 0,
        shift: 0,
        zoom: 0,
        float16: false,
        mirrorAverage: false,
        ...extra,
      }),
    );

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'moodwire-promote-'));
    await writeTinyFer(dir);
    good = path.join(dir, 'good');
    bad = path.join(dir, 'bad');
    // Four epochs learn the two classes; one epoch at a vanishing learning rate does not.
    await train(options({ out: good, epochs: 4, checkpointDir: path.join(dir, 'ck-good') }));
    await train(options({ out: bad, epochs: 1, lr: 1e-7, warmupSteps: 1, seed: 3, checkpointDir: path.join(dir, 'ck-bad') }));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('npm run train writes a candidate folder by default, not the served model', () => {
    const parsed = trainCommand().exitOverride().parse([], { from: 'user' }).opts<TrainOptions & { promote: boolean }>();
    assert.equal(parsed.out, DEFAULT_CANDIDATE_DIR);
    assert.equal(parsed.promote, false);
    assert.notEqual(DEFAULT_CANDIDATE_DIR, path.join(repo, 'models/emotion'));
  });

  it('refuses a worse candidate (the served model stays), promotes it with force, keeps the replaced one, and rolls back', async () => {
    const served = path.join(dir, 'served');
    await cp(good, served, { recursive: true });
    const goodVersion = (await readModelCard(good)).version;
    const badVersion = (await readModelCard(bad)).version;
    const base = { target: served, data: path.join(dir, 'tiny.csv'), backend: 'wasm' as const, log: quiet };

    await assert.rejects(promote(bad, { ...base, force: false }), (error: Error) => {
      assert.ok(error instanceof PromotionRefused);
      assert.match(error.message, /not promoted: the candidate is worse \(candidate .*: \d+\.\d\d%, served .*: \d+\.\d\d% on 32 PublicTest rows\); add --force/);
      return true;
    });
    assert.equal((await readModelCard(served)).version, goodVersion);

    const forced = await promote(bad, { ...base, force: true });
    assert.ok(forced.promoted && forced.current && forced.candidate.accuracy < forced.current.accuracy);
    assert.equal((await readModelCard(served)).version, badVersion);
    assert.equal((await readModelCard(previousDir(served))).version, goodVersion);

    assert.equal(await rollback(served, quiet), goodVersion);
    assert.equal((await readModelCard(served)).version, goodVersion);
    assert.equal((await readModelCard(previousDir(served))).version, badVersion, 'a second rollback would undo the first');

    // A candidate at least as good is promoted without force.
    const better = await promote(good, { ...base, force: false });
    assert.ok(better.promoted);
  });

  it('npm run promote: exit status 2 and the reason for a worse candidate, the served model untouched', async () => {
    const served = path.join(dir, 'served-cli');
    await cp(good, served, { recursive: true });
    const result = await run('npx', ['tsx', 'training/promote.ts', bad, '--target', served, '--data', path.join(dir, 'tiny.csv'), '--backend', 'wasm'], { cwd: repo }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr, /promote: not promoted: the candidate is worse/);
    assert.equal((await readModelCard(served)).version, (await readModelCard(good)).version);
  });
});
