/**
 * The name a timeline download gets, the same from the server (Content-Disposition) and the upload
 * page (the link's `download`): the source video's name without its extension, made safe for any
 * file system and header, then `.emotions.json` or `.emotions.csv`.
 */
export function timelineFileName(sourceName: string, format: 'json' | 'csv'): string {
  const base = sourceName
    .replace(/\.[A-Za-z0-9]{1,5}$/, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 80);
  return `${base || 'video'}.emotions.${format}`;
}
