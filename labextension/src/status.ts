/**
 * Step statuses: their order in the legend, their labels, and how a duration reads.
 * Colours live in style/index.css under `[data-status=...]`, so the legend and the nodes share them.
 */
export const STATUSES = [
  'pending',
  'running',
  'cached',
  'succeeded',
  'failed',
  'skipped',
  'condition_false',
  'cancelled'
] as const;

export type Status = (typeof STATUSES)[number];

const LABELS: Record<Status, string> = {
  pending: 'pending',
  running: 'running',
  cached: 'cached',
  succeeded: 'succeeded',
  failed: 'failed',
  skipped: 'skipped',
  condition_false: 'condition false',
  cancelled: 'stopped'
};

export function asStatus(value: unknown): Status {
  return (STATUSES as readonly unknown[]).includes(value) ? (value as Status) : 'pending';
}

export function statusLabel(status: Status): string {
  return LABELS[status];
}

/** `0.42` → "0.42s", `83` → "1m 23s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) {
    return '';
  }
  if (seconds < 10) {
    return `${seconds.toFixed(2)}s`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)}s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m ${Math.round(seconds - minutes * 60)}s`;
}
