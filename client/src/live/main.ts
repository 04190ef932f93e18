/**
 * The live page: join a session, stream camera frames (one unacknowledged at most, paced by the
 * round trip), draw each face's box, emotion and probability bar over the video, chart this
 * page's face timelines, and show the other participants from `emotions` broadcasts.
 *
 * Credentials (a server with API keys): an invite link's token (`#invite=<token>`) or an API key
 * the user enters, kept in the tab's sessionStorage and sent in the socket handshake; an observer's
 * invite watches without a camera. A participant can make invite links to its own session.
 */
import type { InviteRole } from '../../../contract/http.ts';
import type { Ack, ConnectErrorData, FrameResult, JoinResult, ParticipantTimeline, TimelineResult, Face } from '../../../contract/socket.ts';
import { SceneWatch } from './scene-watch.ts';
import { isUnauthorized } from '../shared/api-error.ts';
import { EmotionTimelineChart, emotionLegend } from '../shared/charts.ts';
import { byId, element, emotionBar, emotionChip, showMessage } from '../shared/dom.ts';
import { FramePacer } from '../shared/frame-pacer.ts';
import { captureSize } from '../shared/geometry.ts';
import { drawOverlay, type OverlayFrame } from '../shared/overlay.ts';
import { Roster, type RemoteParticipant } from '../shared/roster.ts';
import { bearerHeaders, Credentials, takeInviteFromUrl } from '../shared/credentials.ts';
import { KeyForm } from '../shared/key-form.ts';
import { connectRefusal, connectSocket } from '../shared/socket.ts';
import { isValidSessionId, newSessionId, sessionIdFromUrl, urlWithSession } from '../shared/session-id.ts';
import { TimelineBuffer, type TrackSeries } from '../shared/timeline-buffer.ts';
import { FrameGrabber, openCamera } from './camera.ts';
import { createInvite } from './invites.ts';

/** Long enough for a busy server; a dead connection is noticed by socket.io itself. */
const FRAME_ACK_TIMEOUT_MS = 20_000;
const CAPTURE_MAX_SIDE = 640;
/** Boxes older than this are cleared (the face may have left; the server may be gone). */
const OVERLAY_MAX_AGE_MS = 2000;
const MAX_OWN_CHARTS = 4;

const ui = {
  form: byId<HTMLFormElement>('join-form'),
  sessionInput: byId<HTMLInputElement>('session-id'),
  nameInput: byId<HTMLInputElement>('name'),
  newSession: byId<HTMLButtonElement>('new-session'),
  joinButton: byId<HTMLButtonElement>('join'),
  leaveButton: byId<HTMLButtonElement>('leave'),
  copyLink: byId<HTMLButtonElement>('copy-link'),
  message: byId('message'),
  connection: byId('connection'),
  rtt: byId('rtt'),
  fps: byId('fps'),
  sent: byId('sent'),
  dropped: byId('dropped'),
  notReady: byId('not-ready'),
  video: byId<HTMLVideoElement>('video'),
  overlay: byId<HTMLCanvasElement>('overlay'),
  stageHint: byId('stage-hint'),
  facesNow: byId('faces-now'),
  ownTimelines: byId('own-timelines'),
  participants: byId('participants'),
  legend: byId('legend'),
  sessionLabel: byId('session-label'),
  roleNote: byId('role-note'),
  inviteBox: byId('invite-box'),
  inviteRole: byId<HTMLSelectElement>('invite-role'),
  createInvite: byId<HTMLButtonElement>('create-invite'),
  inviteResult: byId('invite-result'),
  inviteLink: byId<HTMLInputElement>('invite-link'),
  inviteExpiry: byId('invite-expiry'),
  copyInvite: byId<HTMLButtonElement>('copy-invite'),
};

// An invite link's token moves from the address bar to the tab's storage (a reload still has it;
// a copied address does not carry it).
const credentials = Credentials.forPage();
const fromLink = takeInviteFromUrl(location.href);
if (fromLink.token) {
  credentials.setInvite(fromLink.token);
  history.replaceState(history.state, '', fromLink.cleanHref);
}
const inviteExpired = credentials.dropExpiredInvite();
const keyForm = new KeyForm();
const socket = connectSocket(() => credentials.credential);
const pacer = new FramePacer();
const grabber = new FrameGrabber();
const ownTimeline = new TimelineBuffer({ maxSamples: 300, maxTracks: MAX_OWN_CHARTS });
const roster = new Roster();
const ownCharts = new Map<number, { root: HTMLElement; chart: EmotionTimelineChart; status: HTMLElement }>();
const remoteCharts = new Map<string, EmotionTimelineChart>();

let joined: { sessionId: string; participantId: string; name: string | undefined; role: InviteRole } | undefined;
let wantSession: { sessionId: string; name: string | undefined } | undefined;
let stream: MediaStream | undefined;
/** The boxes on screen: the faces of the last answer, when it came, and the picture it analysed. */
let overlay: (OverlayFrame & { at: number; picture: Uint8Array | undefined }) | undefined;
const sceneWatch = new SceneWatch();
/** How often the picture on screen is compared with the analysed one (boxes hidden after a cut). */
const STALE_CHECK_MS = 100;
let captureTimer: ReturnType<typeof setTimeout> | undefined;
let everConnected = false;
const mirrored = true;

ui.legend.append(emotionLegend());
ui.sessionInput.value = sessionIdFromUrl(location.href) ?? credentials.inviteClaims?.sessionId ?? newSessionId();
ui.nameInput.value = localStorage.getItem('moodwire:name') ?? '';

// ---- connection state --------------------------------------------------------------------------

function setConnection(state: 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'refused', detail?: string): void {
  ui.connection.dataset.state = state;
  ui.connection.textContent = detail ? `${state} (${detail})` : state;
  document.body.dataset.connection = state;
}

setConnection('connecting');
socket.on('connect', () => {
  everConnected = true;
  setConnection('connected');
  keyForm.hide();
  if (ui.message.dataset.source === 'network' || ui.message.dataset.source === 'access') clearMessage();
  pacer.reset();
  if (wantSession) void join(wantSession.sessionId, wantSession.name);
});
socket.on('disconnect', (reason) => {
  setConnection('reconnecting', reason);
  // Said at once: connect_error only comes after the first failed retry, and a "frames" message
  // (e.g. the server refusing frames while it shuts down) would otherwise stay up meanwhile.
  if (reason !== 'io client disconnect') error('The connection to the server was lost. Reconnecting by itself…', 'network');
  // socket.io does not retry by itself after a server-side disconnect (e.g. a server restart).
  if (reason === 'io server disconnect') setTimeout(() => socket.connect(), 1000);
  joined = undefined;
  updateButtons();
});
socket.on('connect_error', (err) => {
  const refusal = connectRefusal(err);
  if (refusal) {
    onRefused(refusal);
    return;
  }
  setConnection(everConnected ? 'reconnecting' : 'offline');
  error(
    everConnected
      ? 'The connection to the server was lost. Reconnecting by itself…'
      : 'The server cannot be reached. Check that it is running and that this address is right; retrying by itself…',
    'network',
  );
});

if (inviteExpired) info('The invite link of this tab has expired; ask for a new one (or enter an API key if the server asks for one).', 'access');

/**
 * The server refused the handshake. socket.io does not retry after a refusal: the page asks for
 * what it needs (an invite link or an API key) and connects again once it has it.
 */
function onRefused(refusal: ConnectErrorData): void {
  if (refusal.code === 'rate_limited') {
    setConnection('offline', 'busy');
    error(`The server turned the connection down for now (${refusal.message}). Trying again shortly…`, 'network');
    setTimeout(() => socket.connect(), 5000);
    return;
  }
  setConnection('refused', refusal.code);
  if (refusal.code === 'forbidden') {
    error(`The server refused the connection: ${refusal.message}`, 'access');
    return;
  }
  // A refused credential is forgotten: the server will not take it later either.
  const used = credentials.apiKey ? 'API key' : credentials.invite ? 'invite link' : undefined;
  if (credentials.apiKey) credentials.setApiKey(undefined);
  else if (credentials.invite) credentials.setInvite(undefined);
  clearMessage();
  const reason = used
    ? `The server did not accept this ${used}: ${refusal.message}. Open a new invite link, or enter an API key.`
    : 'This server needs an invite link or an API key. Open the invite link you were given, or enter an API key.';
  void askForKey(reason).then(() => {
    setConnection('connecting');
    socket.connect();
  });
}

/** Shows the API key form; resolves once a key is entered and kept for the tab. */
async function askForKey(reason: string): Promise<void> {
  const key = await keyForm.ask(reason);
  credentials.setApiKey(key);
}

function error(text: string, source: string): void {
  showMessage(ui.message, text, 'error');
  ui.message.dataset.source = source;
}
function info(text: string, source: string): void {
  showMessage(ui.message, text, 'info');
  ui.message.dataset.source = source;
}
function clearMessage(): void {
  showMessage(ui.message, undefined);
  ui.message.dataset.source = '';
}

// ---- joining -----------------------------------------------------------------------------------

ui.newSession.addEventListener('click', () => {
  ui.sessionInput.value = newSessionId();
  ui.sessionInput.focus();
});

ui.copyLink.addEventListener('click', async () => {
  const link = urlWithSession(location.href, ui.sessionInput.value.trim());
  try {
    await navigator.clipboard.writeText(link);
    info(`Link copied: ${link}`, 'copy');
  } catch {
    info(`Share this link: ${link}`, 'copy');
  }
});

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const sessionId = ui.sessionInput.value.trim();
  if (!isValidSessionId(sessionId)) {
    error('A session id is 1 to 64 letters, digits, "-" or "_".', 'form');
    ui.sessionInput.focus();
    return;
  }
  const name = ui.nameInput.value.trim() || undefined;
  if (name) localStorage.setItem('moodwire:name', name);
  history.replaceState(null, '', urlWithSession(location.href, sessionId));
  wantSession = { sessionId, name };
  clearMessage();
  // An observer's invite never starts the camera (the join answer confirms the role).
  if (!observerInvite()) void startCamera();
  if (socket.connected) void join(sessionId, name);
  else info('Waiting for the server connection…', 'network');
});

ui.leaveButton.addEventListener('click', () => {
  wantSession = undefined;
  if (joined) socket.emit('session:leave', {}, () => undefined);
  joined = undefined;
  stopCamera();
  roster.reset([]);
  renderParticipants();
  updateButtons();
  ui.joinButton.focus();
});

async function join(sessionId: string, name: string | undefined): Promise<void> {
  let answer: Ack<JoinResult>;
  try {
    answer = await socket.timeout(8000).emitWithAck('session:join', name ? { sessionId, name } : { sessionId });
  } catch {
    error('The server did not answer the join request. Retrying when the connection is back…', 'network');
    return;
  }
  if (!answer.ok) {
    const claims = credentials.apiKey ? undefined : credentials.inviteClaims;
    const hint = answer.error.code === 'forbidden' && claims && claims.sessionId !== sessionId ? ` The invite link you opened is for the session "${claims.sessionId}".` : '';
    error(`Could not join the session: ${answer.error.message.replace(/\.$/, '')}.${hint}`, 'join');
    wantSession = undefined;
    updateButtons();
    return;
  }
  joined = { sessionId: answer.sessionId, participantId: answer.participantId, name, role: answer.role === 'observer' ? 'observer' : 'participant' };
  applyRole(joined.role);
  // A new membership starts new tracks on the server (after a restart too: track #1 there is not
  // the old #1), so the page's own charts start over instead of joining them across the gap.
  ownTimeline.clear();
  renderOwnTimelines([]);
  ui.sessionLabel.textContent = answer.sessionId;
  roster.reset(answer.participants);
  updateButtons();
  renderParticipants();
  void backfillTimelines();
  scheduleCapture(0);
}

/** Earlier samples of the others, so their charts are not empty when joining late. */
async function backfillTimelines(): Promise<void> {
  let answer: Ack<TimelineResult>;
  try {
    answer = await socket.timeout(8000).emitWithAck('timeline:get', {});
  } catch {
    return;
  }
  if (!answer.ok || !joined) return;
  for (const p of answer.participants) {
    if (p.participantId === joined.participantId) continue;
    applyTimeline(p);
  }
  renderParticipants();
}

function applyTimeline(p: ParticipantTimeline): void {
  const remote = roster.joined({ participantId: p.participantId, ...(p.name ? { name: p.name } : {}) });
  if (!p.present) roster.left({ participantId: p.participantId });
  const samples = p.tracks.flatMap((t) => t.samples.map((s) => ({ trackId: t.trackId, ...s }))).sort((a, b) => a.ts - b.ts);
  for (const s of samples) remote.timeline.add(s.trackId, s.ts, s.smoothed, s.dominant);
}

/** Whether the tab's credential is an observer's invite (an API key, if given, is used instead). */
function observerInvite(): boolean {
  return !credentials.apiKey && credentials.inviteClaims?.role === 'observer';
}

/** Observers watch: no camera, no frames, no invites; participants may invite others. */
function applyRole(role: InviteRole): void {
  document.body.dataset.role = role;
  ui.roleNote.hidden = role !== 'observer';
  ui.inviteBox.hidden = role !== 'participant';
  if (role === 'observer') {
    if (stream) stopCamera();
    ui.stageHint.textContent = 'Watching as observer: your camera stays off.';
  }
}

function updateButtons(): void {
  const active = Boolean(wantSession);
  if (!joined) {
    ui.inviteBox.hidden = true;
    ui.roleNote.hidden = true;
  }
  ui.joinButton.textContent = joined ? 'Joined' : active ? 'Joining…' : observerInvite() ? 'Watch session' : 'Join session';
  ui.joinButton.disabled = active;
  ui.leaveButton.disabled = !active;
  ui.sessionInput.disabled = active;
  ui.nameInput.disabled = active;
  ui.newSession.disabled = active;
  document.body.dataset.joined = joined ? 'true' : 'false';
}
updateButtons();

// ---- camera and frames -------------------------------------------------------------------------

async function startCamera(): Promise<void> {
  if (stream) return;
  try {
    stream = await openCamera();
  } catch (e) {
    error((e as Error).message, 'camera');
    ui.stageHint.textContent = 'No camera: watching only.';
    return;
  }
  ui.video.srcObject = stream;
  ui.stageHint.textContent = '';
  await ui.video.play().catch(() => undefined);
  scheduleCapture(0);
}

function stopCamera(): void {
  if (captureTimer) clearTimeout(captureTimer);
  captureTimer = undefined;
  stream?.getTracks().forEach((t) => t.stop());
  stream = undefined;
  ui.video.srcObject = null;
  overlay = undefined;
  redraw();
  ui.facesNow.replaceChildren();
  ui.stageHint.textContent = 'Camera off.';
}

function scheduleCapture(delayMs: number): void {
  if (captureTimer) clearTimeout(captureTimer);
  captureTimer = setTimeout(() => void captureOnce(), delayMs);
}

async function captureOnce(): Promise<void> {
  captureTimer = undefined;
  if (!stream || !joined || joined.role === 'observer' || !socket.connected) return; // resumed by join / camera start
  if (ui.video.readyState < 2 || ui.video.videoWidth === 0) {
    scheduleCapture(100);
    return;
  }
  const wait = pacer.delayUntilNext(performance.now());
  if (wait > 0) {
    if (Number.isFinite(wait)) scheduleCapture(wait);
    return;
  }
  const size = captureSize({ width: ui.video.videoWidth, height: ui.video.videoHeight }, CAPTURE_MAX_SIDE);
  const ts = Date.now();
  const seq = pacer.begin(performance.now());
  sceneWatch.sent(seq, ui.video);
  let image: ArrayBuffer;
  try {
    image = await grabber.grab(ui.video, size, pacer.stats.quality);
  } catch {
    pacer.abandon(seq);
    scheduleCapture(500);
    return;
  }
  const sentAs = joined;
  let answer: Ack<FrameResult>;
  try {
    answer = await socket.timeout(FRAME_ACK_TIMEOUT_MS).emitWithAck('frame', { seq, ts, image });
  } catch {
    pacer.abandon(seq);
    renderStats();
    scheduleCapture(0);
    return;
  }
  pacer.complete(seq, performance.now(), answer.ok || (answer.error.code === 'not_ready' ? 'not_ready' : false));
  if (answer.ok) {
    onFrameResult(answer, ts);
    if (ui.message.dataset.source === 'frames') clearMessage();
  } else if (answer.error.code === 'not_ready') {
    info('The server is still loading its models; frames will be analysed shortly.', 'frames');
  } else if (answer.error.code === 'shutting_down') {
    // A restart or a rolling update: the socket closes next, and the page reconnects by itself.
    info('The server is shutting down; this page reconnects by itself when it is back.', 'network');
  } else if (answer.error.code === 'not_joined') {
    // A frame sent before this page left or joined another session is refused by design; only a
    // membership the server forgot (e.g. it restarted) calls for joining again.
    if (joined === sentAs && wantSession) {
      joined = undefined;
      void join(wantSession.sessionId, wantSession.name);
      return;
    }
  } else if (answer.error.code === 'forbidden') {
    // This membership may not send frames (an observer): stop trying.
    error(`A frame was refused: ${answer.error.message}`, 'frames');
    stopCamera();
    renderStats();
    return;
  } else if (answer.error.code !== 'frame_dropped') {
    error(`A frame was refused: ${answer.error.message}`, 'frames');
  }
  renderStats();
  scheduleCapture(pacer.delayUntilNext(performance.now()));
}

function onFrameResult(result: FrameResult, ts: number): void {
  overlay = { faces: result.faces, frame: { width: result.width, height: result.height }, at: performance.now(), picture: sceneWatch.answered(result.seq) };
  redraw();
  for (const face of result.faces) ownTimeline.add(face.trackId, ts, face.smoothed, face.dominant);
  renderOwnTimelines(result.faces);
  ui.stageHint.textContent = result.faces.length === 0 ? 'No face in view.' : '';
  ui.video.dataset.faces = String(result.faces.length);
  // The overlay in words: what a screen reader (and a test) can read.
  ui.facesNow.replaceChildren(
    ...result.faces.map((f) => {
      const item = element('li', {}, element('span', { className: 'track', text: `#${f.trackId}` }), emotionChip(f), emotionBar(f.smoothed));
      item.dataset.trackId = String(f.trackId);
      if (!f.uncertain) item.dataset.dominant = f.dominant;
      return item;
    }),
  );
}

// ---- drawing -----------------------------------------------------------------------------------

function redraw(): void {
  const fresh = overlay && performance.now() - overlay.at < OVERLAY_MAX_AGE_MS ? overlay : undefined;
  drawOverlay(ui.overlay, ui.video, fresh, mirrored);
}
new ResizeObserver(redraw).observe(ui.overlay);
// Boxes go when they are old, or at once when the picture changed under them (a cut, fast
// motion): the next answer brings the new ones a frame interval plus a round trip later.
setInterval(() => {
  if (!overlay) return;
  const old = performance.now() - overlay.at >= OVERLAY_MAX_AGE_MS;
  const stale = !old && overlay.picture !== undefined && sceneWatch.isStale(overlay.picture, ui.video);
  if (!old && !stale) return;
  if (stale) ui.overlay.dataset.staleHides = String(Number(ui.overlay.dataset.staleHides ?? 0) + 1);
  overlay = undefined;
  redraw();
  ui.facesNow.replaceChildren();
}, STALE_CHECK_MS);

function renderStats(): void {
  const s = pacer.stats;
  ui.rtt.textContent = s.rttMs === undefined ? '–' : `${Math.round(s.rttMs)} ms`;
  ui.fps.textContent = s.sent === 0 ? '–' : `${(1000 / s.intervalMs).toFixed(1)}/s`;
  ui.sent.textContent = String(s.sent);
  ui.dropped.textContent = String(s.dropped);
  ui.notReady.textContent = String(s.notReady);
}
renderStats();

function renderOwnTimelines(current: Face[]): void {
  const visible = new Set<number>();
  for (const series of ownTimeline.tracks()) {
    visible.add(series.trackId);
    let entry = ownCharts.get(series.trackId);
    if (!entry) {
      const canvas = element('canvas');
      canvas.setAttribute('role', 'img');
      const status = element('span', { className: 'track-status' });
      const root = element('figure', { className: 'timeline-card' }, element('figcaption', {}, `Face #${series.trackId} `, status), element('div', { className: 'chart-box' }, canvas));
      root.dataset.trackId = String(series.trackId);
      ui.ownTimelines.append(root);
      entry = { root, chart: new EmotionTimelineChart(canvas, { xTitle: TIME_AXIS }), status };
      ownCharts.set(series.trackId, entry);
    }
    updateTrackCard(entry, series, current.find((f) => f.trackId === series.trackId));
  }
  for (const [trackId, entry] of ownCharts) {
    if (!visible.has(trackId)) {
      entry.chart.destroy();
      entry.root.remove();
      ownCharts.delete(trackId);
    }
  }
  ui.ownTimelines.dataset.empty = ownCharts.size === 0 ? 'true' : 'false';
}

function updateTrackCard(entry: { root: HTMLElement; chart: EmotionTimelineChart; status: HTMLElement }, series: TrackSeries, face: Face | undefined): void {
  entry.chart.setPoints(series.points);
  entry.root.dataset.points = String(series.points.length);
  entry.status.replaceChildren(face ? emotionChip(face) : element('span', { className: 'muted', text: 'out of view' }));
  const last = series.points[series.points.length - 1];
  entry.chart.chart.canvas.setAttribute('aria-label', `Emotion timeline of face ${series.trackId}: ${series.points.length} samples${last ? `, now ${last.dominant}` : ''}`);
}

/** The live charts' x axis: seconds since the timeline's first sample. */
const TIME_AXIS = 'seconds';

// ---- other participants ------------------------------------------------------------------------

socket.on('participant:joined', (p) => {
  roster.joined(p);
  scheduleParticipants();
});
socket.on('participant:left', (p) => {
  roster.left(p);
  scheduleParticipants();
});
socket.on('emotions', (event) => {
  if (joined && event.participantId === joined.participantId) return;
  roster.emotions(event, Date.now());
  scheduleParticipants();
});

let participantsPending = false;
function scheduleParticipants(): void {
  if (participantsPending) return;
  participantsPending = true;
  setTimeout(() => {
    participantsPending = false;
    renderParticipants();
  }, 150);
}

function renderParticipants(): void {
  const list = roster.list();
  const seen = new Set<string>();
  for (const p of list) {
    seen.add(p.participantId);
    let item = ui.participants.querySelector<HTMLElement>(`li[data-participant-id="${CSS.escape(p.participantId)}"]`);
    if (!item) {
      item = buildParticipantItem(p);
      ui.participants.append(item);
    }
    fillParticipantItem(item, p);
  }
  for (const item of ui.participants.querySelectorAll<HTMLElement>('li[data-participant-id]')) {
    const id = item.dataset.participantId!;
    if (!seen.has(id)) {
      remoteCharts.get(id)?.destroy();
      remoteCharts.delete(id);
      item.remove();
    }
  }
  ui.participants.dataset.count = String(list.length);
  byId('participants-empty').hidden = list.length > 0;
}

function buildParticipantItem(p: RemoteParticipant): HTMLElement {
  const canvas = element('canvas');
  canvas.setAttribute('role', 'img');
  const item = element(
    'li',
    { className: 'participant' },
    element('div', { className: 'participant-head' }, element('strong', { className: 'participant-name' }), element('span', { className: 'participant-state' })),
    element('div', { className: 'participant-faces' }),
    element('div', { className: 'chart-box small' }, canvas),
    element('p', { className: 'chart-caption muted' }),
  );
  item.dataset.participantId = p.participantId;
  remoteCharts.set(p.participantId, new EmotionTimelineChart(canvas, { xTitle: TIME_AXIS }));
  return item;
}

function fillParticipantItem(item: HTMLElement, p: RemoteParticipant): void {
  item.querySelector('.participant-name')!.textContent = p.name ?? `Guest ${p.participantId.slice(0, 4)}`;
  item.querySelector('.participant-state')!.textContent = p.present ? `${p.faces.length} face${p.faces.length === 1 ? '' : 's'}` : 'left';
  item.dataset.present = String(p.present);
  item.dataset.faces = String(p.faces.length);
  const faces = item.querySelector('.participant-faces')!;
  faces.replaceChildren(
    ...p.faces.map((f) => element('div', { className: 'remote-face' }, element('span', { className: 'track', text: `#${f.trackId}` }), emotionChip(f), emotionBar(f.smoothed))),
  );
  // The chart follows the participant's first (lowest id) current track, else its latest one.
  const tracks = p.timeline.tracks();
  const main = tracks.find((t) => p.faces.some((f) => f.trackId === t.trackId)) ?? tracks[tracks.length - 1];
  const chart = remoteCharts.get(p.participantId);
  if (chart && main) {
    chart.setPoints(main.points);
    chart.chart.canvas.setAttribute('aria-label', `Emotion timeline of ${p.name ?? 'a guest'}, face ${main.trackId}`);
    item.dataset.points = String(main.points.length);
  }
  const present = main !== undefined && p.faces.some((f) => f.trackId === main.trackId);
  item.querySelector('.chart-caption')!.textContent = main ? `Chart: face #${main.trackId}${present ? '' : ' (out of view)'}` : '';
}

// ---- invites -----------------------------------------------------------------------------------

ui.createInvite.addEventListener('click', () => void makeInvite());

async function makeInvite(): Promise<void> {
  if (!joined || joined.role !== 'participant') return;
  const sessionId = joined.sessionId;
  const role: InviteRole = ui.inviteRole.value === 'observer' ? 'observer' : 'participant';
  ui.createInvite.disabled = true;
  try {
    for (;;) {
      try {
        // The API key if the user gave one, else this tab's own invite, else nothing (a server
        // without keys serving this machine).
        const invite = await createInvite(sessionId, role, bearerHeaders(credentials.credential));
        ui.inviteLink.value = invite.url;
        ui.inviteLink.dataset.role = invite.role;
        ui.inviteExpiry.textContent = `An invite for one ${invite.role} of "${invite.sessionId}", valid until ${new Date(invite.expiresAt).toLocaleString()}. Anyone with the link can join as ${invite.role}.`;
        ui.inviteResult.hidden = false;
        if (ui.message.dataset.source === 'invite') clearMessage();
        return;
      } catch (e) {
        if (!isUnauthorized(e)) throw e;
        if (credentials.apiKey) credentials.setApiKey(undefined);
        await askForKey(`Creating an invite needs an API key here (${e.message}). Enter an API key.`);
      }
    }
  } catch (e) {
    error(`Could not create an invite: ${(e as Error).message}`, 'invite');
  } finally {
    ui.createInvite.disabled = false;
  }
}

ui.copyInvite.addEventListener('click', async () => {
  const link = ui.inviteLink.value;
  if (!link) return;
  try {
    await navigator.clipboard.writeText(link);
    info('Invite link copied.', 'invite');
  } catch {
    ui.inviteLink.select();
    info('Select the link and copy it (the browser did not allow copying here).', 'invite');
  }
});
