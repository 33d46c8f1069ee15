/** Plain-text tables for terminals and logs: one header row, columns padded to their widest cell. */

/** Formats rows as a table; every value is shown on one line, control characters replaced. */
export function formatTable(headers: string[], rows: string[][]): string {
  const clean = (cell: string) => cell.replace(/[\x00-\x1f\x7f]/g, ' ');
  const cells = [headers, ...rows.map((row) => row.map(clean))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const line = (row: string[]) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...cells.slice(1).map(line)].join('\n') + '\n';
}

/** Formats a duration in milliseconds as `1.2 s` or `3 min 04 s`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
}
