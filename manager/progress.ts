/**
 * The terminal view of a run: an overall progress bar and one line per device in flight, rebuilt from the
 * runner's events. It returns text frames; the caller decides where and how often to draw them.
 */
import type { DeviceState, RunCounts, RunEvent } from './runner.js';

const BAR_WIDTH = 30;

/** Devices in flight shown one per line; the rest are counted on one line, so a frame fits a terminal. */
const MAX_DEVICE_LINES = 20;

export class ProgressView {
  private total = 0;
  private readonly active = new Map<string, { state: DeviceState; percent: number }>();
  private readonly counts: Omit<RunCounts, 'total'> = { upgraded: 0, skipped: 0, checked: 0, failed: 0, notStarted: 0 };
  private readonly started = performance.now();

  update(event: RunEvent): void {
    if (event.event === 'runStarted') this.total = event.devices;
    if (event.event === 'deviceState') {
      if (event.state === 'queued' || event.state === 'done') this.active.delete(event.device);
      else this.active.set(event.device, { state: event.state, percent: event.percent });
    }
    if (event.event === 'deviceDone') {
      this.active.delete(event.device);
      this.counts[event.result]++;
    }
  }

  /** Returns the frame's lines, without trailing newlines. */
  render(): string[] {
    const done = Object.values(this.counts).reduce((sum, count) => sum + count, 0);
    const filled = this.total === 0 ? 0 : Math.round((done / this.total) * BAR_WIDTH);
    const parts = Object.entries(this.counts)
      .filter(([, count]) => count > 0)
      .map(([result, count]) => `${count} ${result}`);
    const elapsed = ((performance.now() - this.started) / 1000).toFixed(1);
    const lines = [
      `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${this.total} done, ${this.active.size} in flight` +
        `${parts.length > 0 ? ` (${parts.join(', ')})` : ''}, ${elapsed} s`,
    ];

    const shown = [...this.active].slice(0, MAX_DEVICE_LINES);
    const nameWidth = Math.max(0, ...shown.map(([name]) => name.length));
    for (const [name, { state, percent }] of shown) {
      lines.push(`  ${name.padEnd(nameWidth)}  ${state.padEnd(22)} ${String(percent).padStart(3)}%`);
    }
    if (this.active.size > shown.length) lines.push(`  ... and ${this.active.size - shown.length} more in flight`);
    return lines;
  }
}
