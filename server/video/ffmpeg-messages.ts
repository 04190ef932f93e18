/**
 * ffmpeg and ffprobe name files in their messages: the upload's own path, and any file a playlist
 * or concat list inside it refers to. Clients see these messages (HTTP answers, a failed job's
 * `error`), so they pass through here first: no path of the server's reaches a client.
 */

/** What stands in for a path that is not the upload itself. */
export const PATH_PLACEHOLDER = '[path]';

/** An absolute path (POSIX or Windows) or a file URL, starting at a token boundary. */
const ABSOLUTE_PATH = /(^|[\s'"(=<,])((?:file:)?(?:[A-Za-z]:)?[\\/][^\s'",)]*)/g;

/** A line's path-free form: the upload is `input`, other absolute paths are `[path]`, the `[demuxer @ 0x...]` prefix is dropped. */
function cleanLine(line: string, file: string): string {
  const withoutUpload = file ? line.split(file).join('input') : line;
  return withoutPaths(withoutUpload.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/, '')).trim();
}

/**
 * The last `lines` meaningful lines of an ffmpeg/ffprobe message (stderr or fluent-ffmpeg's error
 * text), joined with "; ", at most 300 characters, without any path.
 */
export function publicFfmpegMessage(raw: string, file: string, lines = 2): string {
  return raw
    .split('\n')
    .map((line) => cleanLine(line, file))
    .filter((line) => line.length > 0 && !/^ff(probe|mpeg) (exited|was killed)/.test(line))
    .slice(-lines)
    .join('; ')
    .slice(0, 300);
}

/** Whether an ffmpeg message says the input refers to other files (concat list, playlist). */
export function refersToOtherFiles(raw: string): boolean {
  return /Unsafe file name|Impossible to open|Protocol not on whitelist/i.test(raw);
}

/** Any text with its absolute paths replaced by `[path]`: the last guard before a message reaches a client or a job's `error`. */
export function withoutPaths(text: string): string {
  return text.replace(ABSOLUTE_PATH, (_match, before: string) => `${before}${PATH_PLACEHOLDER}`);
}
