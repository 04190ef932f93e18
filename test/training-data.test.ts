import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { FerFormatError, readFer2013 } from '../training/data/fer2013.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moodwire-fer-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const pixels = (value: number, count = 2304) => Array.from({ length: count }, (_, i) => (value + i) % 256).join(' ');
const header = 'emotion,pixels,Usage';

async function writeCsv(name: string, lines: string[], gzip = false): Promise<string> {
  const file = path.join(dir, name);
  const text = lines.join('\n') + '\n';
  await writeFile(file, gzip ? gzipSync(text) : text);
  return file;
}

test('reads csv and csv.gz into packed splits with the file hash', async () => {
  const lines = [header, `3,${pixels(0)},Training`, `0,"${pixels(5)}",PublicTest`, `6,${pixels(9)},Training`];
  const plain = await readFer2013(await writeCsv('ok.csv', lines));
  const gz = await readFer2013(await writeCsv('ok.csv.gz', lines, true));
  for (const result of [plain, gz]) {
    assert.equal(result.rows, 3);
    assert.equal(result.splits.Training?.count, 2);
    assert.deepEqual([...result.splits.Training!.labels], [3, 6]);
    assert.equal(result.splits.PublicTest?.count, 1);
    assert.equal(result.splits.PublicTest!.images[0], 5);
    assert.equal(result.splits.Training!.images[2304 + 1], 10);
    assert.equal(result.splits.PrivateTest, undefined);
  }
  assert.notEqual(plain.sha256, gz.sha256, 'the hash is of the file bytes');
  assert.match(plain.sha256, /^[0-9a-f]{64}$/);
});

const malformed: [string, string, RegExp][] = [
  ['a label out of range', `7,${pixels(0)},Training`, /line 3: emotion must be an integer 0\.\.6/],
  ['a missing field', `3,${pixels(0)}`, /line 3: .*(Usage|fields)/],
  ['too few pixels', `3,${pixels(0, 2303)},Training`, /line 3: expected 2304 pixels, got 2303/],
  ['too many pixels', `3,${pixels(0, 2305)},Training`, /line 3: more than 2304 pixels/],
  ['a pixel over 255', `3,256 ${pixels(0, 2303)},Training`, /line 3: pixel 1 is over 255/],
  ['a non-numeric pixel', `3,12 x3 ${pixels(0, 2302)},Training`, /line 3: unexpected character "x"/],
  ['an unknown usage', `3,${pixels(0)},Validation`, /line 3: unknown Usage "Validation"/],
];

for (const [what, row, message] of malformed) {
  test(`rejects ${what} naming the line`, async () => {
    const file = await writeCsv(`bad-${what.replace(/\W+/g, '-')}.csv`, [header, `1,${pixels(1)},Training`, row, `2,${pixels(2)},Training`]);
    await assert.rejects(readFer2013(file), (error: unknown) => {
      assert.ok(error instanceof FerFormatError);
      assert.equal(error.line, 3);
      assert.match(error.message, message);
      return true;
    });
    const skipped = await readFer2013(file, { skipBad: true });
    assert.equal(skipped.rows, 2);
    assert.equal(skipped.skipped.length, 1);
    assert.equal(skipped.skipped[0]!.line, 3);
  });
}

test('rejects a wrong header and an empty file', async () => {
  await assert.rejects(readFer2013(await writeCsv('hdr.csv', ['label,pixels,usage', `1,${pixels(1)},Training`])), /line 1: expected header/);
  await writeFile(path.join(dir, 'empty.csv'), '');
  await assert.rejects(readFer2013(path.join(dir, 'empty.csv')), /line 1: empty file/);
});
