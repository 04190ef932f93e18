/**
 * The upload page: drop or pick a video, upload it with progress (XHR upload events), follow the
 * analysis (socket.io `video:progress` push, polling as fallback), then chart each face's
 * timeline and offer the JSON and CSV downloads. A server with API keys answers 401: the page then
 * asks for a key once (a form, kept in the tab's sessionStorage) and sends it with every call.
 */
import { EmotionTimelineChart, emotionLegend } from '../shared/charts.ts';
import { byId, element, emotionChip, showMessage } from '../shared/dom.ts';
import { EMOTIONS, EMOTION_COLORS, percent } from '../shared/emotions.ts';
import { connectSocket, type MoodwireSocket } from '../shared/socket.ts';
import { bearerHeaders, Credentials } from '../shared/credentials.ts';
import { isUnauthorized } from '../shared/api-error.ts';
import { KeyForm } from '../shared/key-form.ts';
import { timelineFileName } from '../../../contract/file-names.ts';
import type { VideoTimeline } from '../../../contract/http.ts';
import { ApiError, checkAccess, fetchThumbnail, fetchTimelineFile, getJob, getTimeline, jobErrorText, type JobState, listJobs, timelineUrl, type UploadHandle, uploadVideo } from './api.ts';

const POLL_MS_WITH_PUSH = 3000;
const POLL_MS_WITHOUT_PUSH = 1000;
const VIDEO_EXTENSIONS = /\.(mp4|m4v|mov|mkv|webm|avi|mpe?g|ogv|3gp|wmv|flv|ts)$/i;

const ui = {
  dropZone: byId('drop-zone'),
  file: byId<HTMLInputElement>('file'),
  progressArea: byId('progress-area'),
  fileName: byId('file-name'),
  uploadProgress: byId<HTMLProgressElement>('upload-progress'),
  uploadPercent: byId('upload-percent'),
  analysisProgress: byId<HTMLProgressElement>('analysis-progress'),
  analysisPercent: byId('analysis-percent'),
  phase: byId('phase'),
  cancel: byId<HTMLButtonElement>('cancel'),
  message: byId('message'),
  results: byId('results'),
  resultsSummary: byId('results-summary'),
  downloadJson: byId<HTMLAnchorElement>('download-json'),
  downloadCsv: byId<HTMLAnchorElement>('download-csv'),
  downloadSummary: byId<HTMLAnchorElement>('download-summary'),
  thumbnails: byId<HTMLInputElement>('thumbnails'),
  another: byId<HTMLButtonElement>('another'),
  tracks: byId('tracks'),
  legend: byId('legend'),
  fps: byId<HTMLSelectElement>('fps'),
  recent: byId('recent'),
  recentList: byId('recent-list'),
};

ui.legend.append(emotionLegend());
const credentials = Credentials.forPage();
const keyForm = new KeyForm();
let socket: MoodwireSocket | undefined;
let upload: UploadHandle | undefined;
let current: { id: string; sourceName: string; pollTimer?: ReturnType<typeof setTimeout>; finished: boolean } | undefined;
const charts: EmotionTimelineChart[] = [];

// ---- picking a file ----------------------------------------------------------------------------

ui.file.addEventListener('change', () => {
  const file = ui.file.files?.[0];
  if (file) void start(file);
});
for (const type of ['dragenter', 'dragover'] as const) {
  ui.dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    ui.dropZone.classList.add('dragging');
  });
}
for (const type of ['dragleave', 'drop'] as const) {
  ui.dropZone.addEventListener(type, () => ui.dropZone.classList.remove('dragging'));
}
ui.dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  const file = event.dataTransfer?.files[0];
  if (file) void start(file);
});
ui.cancel.addEventListener('click', () => {
  upload?.abort();
  keyForm.cancel(new ApiError('aborted', 'The upload was cancelled.', 0));
});
for (const [link, format] of [[ui.downloadJson, 'json'], [ui.downloadCsv, 'csv'], [ui.downloadSummary, 'summary-csv']] as const) {
  link.addEventListener('click', (event) => {
    // Without a key the plain link works (the server serves this machine); with one, a link
    // cannot send it, so the file is fetched with the header and saved from memory.
    const id = link.dataset.jobId;
    if (!credentials.apiKey || !id) return;
    event.preventDefault();
    void download(id, format, link.download);
  });
}

async function download(id: string, format: 'json' | 'csv' | 'summary-csv', fileName: string): Promise<void> {
  try {
    const blob = await authorized((headers) => fetchTimelineFile(id, format, headers));
    const url = URL.createObjectURL(blob);
    const a = element('a');
    a.href = url;
    a.download = fileName;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    showMessage(ui.message, `The download failed: ${(error as Error).message}`);
  }
}

ui.another.addEventListener('click', () => {
  reset();
  ui.file.focus();
});

function looksLikeVideo(file: File): boolean {
  return file.type.startsWith('video/') || VIDEO_EXTENSIONS.test(file.name);
}

function reset(): void {
  if (current?.pollTimer) clearTimeout(current.pollTimer);
  setJobInUrl(undefined);
  current = undefined;
  upload = undefined;
  for (const chart of charts.splice(0)) chart.destroy();
  ui.tracks.replaceChildren();
  ui.results.hidden = true;
  ui.progressArea.hidden = true;
  ui.dropZone.hidden = false;
  ui.file.value = '';
  showMessage(ui.message, undefined);
  document.body.dataset.state = 'idle';
}

// ---- upload and analysis -----------------------------------------------------------------------

async function start(file: File): Promise<void> {
  reset();
  if (!looksLikeVideo(file)) {
    showMessage(ui.message, `"${file.name}" does not look like a video. Choose an MP4, MOV, WebM or another video file.`);
    document.body.dataset.state = 'rejected';
    return;
  }
  ui.dropZone.hidden = true;
  ui.progressArea.hidden = false;
  ui.cancel.hidden = false;
  ui.fileName.textContent = `${file.name} (${(file.size / 1024 / 1024).toFixed(1)} MB)`;
  setUpload(0);
  setAnalysis(undefined);
  setPhase('Uploading…', 'uploading');
  let accepted: { id: string };
  try {
    await authorized((headers) => checkAccess(headers));
    setPhase('Uploading…', 'uploading');
    const fps = ui.fps.value === '' ? undefined : Number(ui.fps.value);
    accepted = await authorized((headers) => {
      upload = uploadVideo(file, setUpload, headers, { ...(fps === undefined ? {} : { fps }), thumbnails: ui.thumbnails.checked });
      return upload.done;
    });
  } catch (error) {
    const e = error as ApiError;
    const text = e.code === 'network' || e.code === 'aborted' ? e.message : `The server rejected "${file.name}": ${e.message}`;
    fail(text, e.code === 'aborted' ? 'idle' : 'rejected');
    return;
  } finally {
    upload = undefined;
    ui.cancel.hidden = true;
  }
  follow(accepted.id, file.name);
}

/** Follows job `id` to its end: the page's URL names it, so a reload (or a bookmark) comes back to it. */
function follow(id: string, sourceName: string): void {
  current = { id, sourceName, finished: false };
  setJobInUrl(id);
  setPhase('Queued for analysis…', 'analysing');
  setAnalysis(0);
  subscribe(id);
  void poll(id);
}

function setJobInUrl(id: string | undefined): void {
  const url = new URL(location.href);
  if ((url.searchParams.get('job') ?? undefined) === id) return;
  if (id) url.searchParams.set('job', id);
  else url.searchParams.delete('job');
  history.replaceState(null, '', url);
}

/** Opened with ?job=<id> (a reload, a bookmark, a link from the list): resume that job. */
async function resume(id: string): Promise<void> {
  ui.dropZone.hidden = true;
  ui.progressArea.hidden = false;
  ui.cancel.hidden = true;
  setUpload(1);
  setAnalysis(undefined);
  setPhase('Looking up the analysis…', 'analysing');
  try {
    const job = await authorized((headers) => getJob(id, headers));
    ui.fileName.textContent = job.source.name;
    follow(job.id, job.source.name);
  } catch (error) {
    setJobInUrl(undefined);
    const e = error as ApiError;
    fail(
      e.status === 404
        ? 'That analysis no longer exists: it was deleted, its results expired (VIDEO_RETENTION_HOURS), or it belongs to another API key.'
        : `The analysis could not be loaded: ${e.message}`,
      'idle',
    );
  }
}

/** The caller's recent jobs, as links that resume them; quietly absent when the server needs a key the tab does not have yet. */
async function showRecent(): Promise<void> {
  let jobs;
  try {
    jobs = await listJobs(apiHeaders());
  } catch {
    ui.recent.hidden = true;
    return;
  }
  ui.recentList.replaceChildren(
    ...jobs.map((job) => {
      const link = element('a', { text: job.source.name });
      link.href = `?job=${encodeURIComponent(job.id)}`;
      const item = element('li', {}, link, element('span', { className: 'muted', text: ` ${job.status}${job.status === 'running' ? ` ${percent(job.progress)}` : ''}, ${new Date(job.createdAt).toLocaleString()}` }));
      item.dataset.jobId = job.id;
      item.dataset.status = job.status;
      return item;
    }),
  );
  ui.recent.hidden = jobs.length === 0;
}

// ---- credentials -------------------------------------------------------------------------------

/** The API key header, if the user gave one (an invite token of the live page is no key for this API). */
function apiHeaders(): Record<string, string> {
  return bearerHeaders(credentials.apiKey);
}

/**
 * Runs an API call with the page's credential; when the server answers 401, asks for an API key
 * (once for every call waiting on it), keeps it for the tab and runs the call again. A refused key
 * is forgotten and asked for again.
 */
async function authorized<T>(call: (headers: Record<string, string>) => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call(apiHeaders());
    } catch (error) {
      if (!isUnauthorized(error)) throw error;
      const refused = credentials.apiKey !== undefined;
      if (refused) credentials.setApiKey(undefined);
      const previousState = document.body.dataset.state ?? 'idle';
      document.body.dataset.state = 'needs-key';
      const key = await keyForm.ask(
        refused
          ? `The server did not accept that API key (${error.message}). Check it and enter it again.`
          : 'This server needs an API key to analyse videos. Enter the key you were given; it is kept in this browser tab only.',
      );
      credentials.setApiKey(key);
      document.body.dataset.state = previousState;
      // A socket refused for want of a key tries again with it.
      if (socket && !socket.connected && !socket.active) socket.connect();
    }
  }
}

function fail(text: string, state: string): void {
  showMessage(ui.message, text);
  ui.progressArea.hidden = true;
  ui.dropZone.hidden = false;
  document.body.dataset.state = state;
}

function subscribe(id: string): void {
  socket ??= connectSocket(() => credentials.apiKey);
  const send = () => {
    socket!.timeout(5000).emit('video:subscribe', { id }, () => undefined);
  };
  socket.off('connect');
  socket.on('connect', send);
  if (socket.connected) send();
  socket.off('video:progress');
  socket.on('video:progress', (event) => {
    if (event.id !== current?.id) return;
    void onJob(event);
  });
}

async function poll(id: string): Promise<void> {
  if (current?.id !== id || current.finished) return;
  try {
    await onJob(await authorized((headers) => getJob(id, headers)));
  } catch (error) {
    showMessage(ui.message, `${(error as Error).message} Still trying…`, 'info');
  }
  if (current?.id === id && !current.finished) {
    current.pollTimer = setTimeout(() => void poll(id), socket?.connected ? POLL_MS_WITH_PUSH : POLL_MS_WITHOUT_PUSH);
  }
}

async function onJob(job: JobState): Promise<void> {
  if (!current || job.id !== current.id || current.finished) return;
  if (ui.message.dataset.kind === 'info') showMessage(ui.message, undefined);
  if (job.status === 'queued') setPhase('Queued for analysis…', 'analysing');
  if (job.status === 'running') {
    setAnalysis(job.progress);
    setPhase(`Analysing… ${percent(job.progress)}`, 'analysing');
  }
  if (job.status === 'failed') {
    current.finished = true;
    fail(`The analysis failed: ${jobErrorText(job.error)}`, 'failed');
    return;
  }
  if (job.status === 'done') {
    current.finished = true;
    if (current.pollTimer) clearTimeout(current.pollTimer);
    setAnalysis(1);
    setPhase('Analysis done. Loading the timelines…', 'analysing');
    try {
      showResults(await authorized((headers) => getTimeline(job.id, headers)));
    } catch (error) {
      fail(`The timelines could not be loaded: ${(error as Error).message}`, 'failed');
    }
  }
}

function setUpload(fraction: number): void {
  ui.uploadProgress.value = fraction;
  ui.uploadPercent.textContent = percent(fraction);
}

function setAnalysis(fraction: number | undefined): void {
  if (fraction === undefined) {
    ui.analysisProgress.removeAttribute('value'); // indeterminate until the job starts
    ui.analysisPercent.textContent = 'waiting';
    return;
  }
  ui.analysisProgress.value = fraction;
  ui.analysisPercent.textContent = percent(fraction);
}

function setPhase(text: string, state: string): void {
  ui.phase.textContent = text;
  document.body.dataset.state = state;
}

// ---- results -----------------------------------------------------------------------------------

function showResults(timeline: VideoTimeline): void {
  ui.progressArea.hidden = true;
  ui.results.hidden = false;
  ui.downloadJson.href = timelineUrl(timeline.id, 'json');
  ui.downloadJson.download = timelineFileName(current?.sourceName ?? 'video', 'json');
  ui.downloadCsv.href = timelineUrl(timeline.id, 'csv');
  ui.downloadCsv.download = timelineFileName(current?.sourceName ?? 'video', 'csv');
  ui.downloadSummary.href = timelineUrl(timeline.id, 'summary-csv');
  ui.downloadSummary.download = timelineFileName(current?.sourceName ?? 'video', 'csv').replace(/\.csv$/, '.summary.csv');
  ui.downloadJson.dataset.jobId = timeline.id;
  ui.downloadCsv.dataset.jobId = timeline.id;
  ui.downloadSummary.dataset.jobId = timeline.id;
  const withFaces = timeline.frames.filter((f) => f.faceCount > 0).length;
  ui.resultsSummary.textContent =
    `${timeline.tracks.length} face track${timeline.tracks.length === 1 ? '' : 's'} in ${timeline.durationSec.toFixed(1)} s of video ` +
    `(${timeline.frames.length} frames sampled at ${timeline.sampledFps} per second, ${withFaces} with faces).`;
  const tracks = [...timeline.tracks].sort((a, b) => b.summary.samples - a.summary.samples);
  for (const track of tracks) {
    const canvas = element('canvas');
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `Emotion probabilities of face ${track.trackId} from ${track.summary.firstT.toFixed(1)} s to ${track.summary.lastT.toFixed(1)} s`);
    const share = element('div', { className: 'share' });
    share.setAttribute('aria-label', 'Share of time each emotion was dominant');
    for (const emotion of EMOTIONS) {
      const meter = element('div', { className: 'meter' }, element('span'));
      const fill = meter.firstElementChild as HTMLElement;
      fill.style.width = `${track.summary.dominantShare[emotion] * 100}%`;
      fill.style.background = EMOTION_COLORS[emotion];
      share.append(element('span', { text: emotion }), meter, element('span', { text: percent(track.summary.dominantShare[emotion]) }));
    }
    const heading = element('h3', {}, `Face #${track.trackId}`, emotionChip({ dominant: track.summary.dominant, smoothed: track.summary.meanEmotions }));
    if (track.thumbnail) heading.prepend(faceThumbnail(track.thumbnail, track.trackId));
    const card = element(
      'article',
      { className: 'track-result' },
      heading,
      element('p', { className: 'muted', text: `On screen ${track.summary.timeOnScreenSec.toFixed(1)} s (${track.summary.firstT.toFixed(1)}–${track.summary.lastT.toFixed(1)} s), ${track.summary.samples} samples` }),
      element('div', { className: 'chart-box large' }, canvas),
      share,
    );
    card.dataset.trackId = String(track.trackId);
    card.dataset.samples = String(track.summary.samples);
    ui.tracks.append(card);
    const chart = new EmotionTimelineChart(canvas, { xTitle: 'seconds' });
    chart.setPoints(track.samples.map((s) => ({ t: s.t, scores: s.smoothed })));
    charts.push(chart);
  }
  if (tracks.length === 0) ui.tracks.append(element('p', { className: 'muted', text: 'No face was found in this video.' }));
  document.body.dataset.state = 'done';
  ui.results.querySelector('h2')?.focus();
  void showRecent();
}

/** The face a track follows, so "Face #5" means someone; with a key the picture is fetched with it. */
function faceThumbnail(path: string, trackId: number): HTMLImageElement {
  const img = element('img', { className: 'face-thumbnail' });
  img.alt = `Face #${trackId}`;
  img.width = 48;
  img.height = 48;
  if (!credentials.apiKey) img.src = path;
  else void fetchThumbnail(path, apiHeaders()).then((url) => (img.src = url), () => img.remove());
  return img;
}

const jobInUrl = new URL(location.href).searchParams.get('job');
if (jobInUrl) void resume(jobInUrl);
void showRecent();
