/**
 * Power-loss harness: runs a scenario in a child process, kills it with SIGKILL at a seeded random moment,
 * then lets the scenario check what survived and retry. Used by the unit suite and by `npm run soak:powerloss`.
 *
 * SIGKILL stops the process between any two system calls but keeps what the kernel has cached, so it tests
 * that every on-disk state between two calls is recoverable. It does not lose unsynced page-cache data the way
 * a real power cut does; the fsync ordering that covers that case is described in docs/flash.md.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { makeTempDir, REPO_ROOT, runProgram } from '../support/index.js';
import { SCENARIOS } from './powerloss-scenarios.js';

const CHILD_SCRIPT = join(REPO_ROOT, 'dist/test/flash/powerloss-child.js');

export interface PowerLossOptions {
  scenario: string;
  trials: number;
  /** Runs further trials, up to three per kill asked for, until this many kills have landed. */
  minKills?: number;
  seed: number;
  /** Trials run side by side. */
  concurrency?: number;
  /** Every n-th trial also runs `snmp-upgrade flash show --json` after the kill; 0 never does. */
  showEvery?: number;
  /** Receives one line per finished trial. */
  log?: (line: string) => void;
}

export interface TrialFailure {
  trial: number;
  /** When the kill, or both kills, came and in which step they landed. */
  kill: string;
  message: string;
}

export interface PowerLossSummary {
  /** Trials run: the number asked for, or more when minKills needed them. */
  trials: number;
  /** Kills that landed before the child finished, second kills included. */
  kills: number;
  /** Kill window: a run's measured duration with some margin. */
  windowMs: number;
  /** Median time from ready to the scenario's focus step in unkilled runs. */
  focusMs: number;
  /** Trials whose child finished before the kill came. */
  completed: number;
  /** For each step, how many kills landed while it was the last step announced. */
  killsPerStep: Record<string, number>;
  failures: TrialFailure[];
}

/** Runs the trials and returns what happened; it throws only when the harness itself cannot run. */
export async function runPowerLossTrials(options: PowerLossOptions): Promise<PowerLossSummary> {
  const scenario = SCENARIOS[options.scenario];
  if (!scenario) throw new Error(`unknown power-loss scenario ${options.scenario}; known: ${Object.keys(SCENARIOS).join(', ')}`);

  const work = await makeTempDir('snmp-upgrade-powerloss-');
  let next = 0;
  try {
    const template = join(work.path, 'template');
    await mkdir(template);
    await scenario.prepareTemplate(template);

    const timing = await calibrate(options.scenario, template, join(work.path, 'calibration'));
    const summary: PowerLossSummary = { trials: 0, kills: 0, windowMs: timing.windowMs, focusMs: timing.focusMs, completed: 0, killsPerStep: {}, failures: [] };
    const minKills = options.minKills ?? 0;
    const maxTrials = Math.max(options.trials, 3 * minKills);
    const wantsMore = () => next < options.trials || (summary.kills < minKills && next < maxTrials);

    const worker = async () => {
      while (wantsMore()) {
        const trial = next++;
        summary.trials++;
        const trialDir = join(work.path, `trial-${trial}`);
        await cp(template, trialDir, { recursive: true });
        const plan = planKill(seededRandom(options.seed, trial), timing, scenario.focusStep);
        const outcome = await killDuring(options.scenario, trialDir, plan);
        let failure = outcome.error;
        let where = `${describePlan(plan)} during ${outcome.completed ? '(finished)' : outcome.lastStep}`;

        if (outcome.completed) summary.completed++;
        else countKill(summary, outcome.lastStep);

        // Every third trial restarts the work on the crashed flash and kills it again, mostly while open()
        // recovers, because recovery must itself survive a power loss.
        if (failure === undefined && !outcome.completed && trial % 3 === 2) {
          const secondPlan: KillPlan = { anchor: 'ready', delayMs: seededRandom(options.seed ^ 0x5bd1e995, trial) * timing.focusMs * 1.5 };
          const second = await killDuring(options.scenario, trialDir, secondPlan);
          failure = second.error;
          if (!second.completed) countKill(summary, `${second.lastStep} (second kill)`);
          where += `, then ${describePlan(secondPlan)} during ${second.completed ? '(finished)' : second.lastStep}`;
        }

        if (failure === undefined) failure = await verifyTrial(options, trial, trialDir);
        if (failure !== undefined) summary.failures.push({ trial, kill: where, message: failure });
        options.log?.(`trial ${trial}: kill ${where}: ${failure ?? 'ok'}`);
        await rm(trialDir, { recursive: true, force: true });
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 2 }, worker));
    return summary;
  } finally {
    await work.remove();
  }
}

function countKill(summary: PowerLossSummary, step: string): void {
  summary.kills++;
  summary.killsPerStep[step] = (summary.killsPerStep[step] ?? 0) + 1;
}

async function verifyTrial(options: PowerLossOptions, trial: number, trialDir: string): Promise<string | undefined> {
  const flashDir = join(trialDir, 'flash');
  const showEvery = options.showEvery ?? 0;
  if (showEvery > 0 && trial % showEvery === 0) {
    const show = await runProgram(['flash', 'show', '--flash', flashDir, '--json']);
    if (show.status !== 0) return `flash show failed with status ${show.status}: ${show.stderr.trim()}`;
    const shown = JSON.parse(show.stdout) as { bootImage: string; bootSha256: string; images: Array<{ name: string; sha256: string }> };
    const boot = shown.images.find((image) => image.name === shown.bootImage);
    if (!boot || boot.sha256 !== shown.bootSha256) return `flash show reports boot image ${shown.bootImage} without a matching record`;
  }

  try {
    await SCENARIOS[options.scenario]!.verifyAndRetry(trialDir);
    return undefined;
  } catch (error) {
    return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }
}

interface KillOutcome {
  completed: boolean;
  lastStep: string;
  /** Set when the child failed on its own instead of being killed. */
  error: string | undefined;
}

/** When to kill: `delayMs` after the child reports ready, or after it announces the given step. */
interface KillPlan {
  anchor: 'ready' | string;
  delayMs: number;
}

function describePlan(plan: KillPlan): string {
  return `${plan.delayMs.toFixed(2)} ms after ${plan.anchor === 'ready' ? 'ready' : `step ${plan.anchor}`}`;
}

/** Starts the child on `trialDir` and kills it at the planned moment. */
async function killDuring(scenario: string, trialDir: string, plan: KillPlan): Promise<KillOutcome> {
  const child = spawn(process.execPath, [CHILD_SCRIPT, scenario, trialDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let lastStep = 'start';
  let done = false;
  let stderr = '';
  let buffered = '';
  let markAnchor: () => void = () => undefined;
  const anchorReached = new Promise<void>((resolve) => {
    markAnchor = resolve;
  });

  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line === 'done') done = true;
      if (line.startsWith('step ')) lastStep = line.slice(5);
      if (line === plan.anchor || line === `step ${plan.anchor}`) markAnchor();
    }
  });

  await Promise.race([anchorReached, exited]);
  await sleepPrecisely(plan.delayMs);
  child.kill('SIGKILL');
  const [code, signal] = await exited;

  if (signal === 'SIGKILL') return { completed: done, lastStep, error: undefined };
  if (code === 0 && done) return { completed: true, lastStep, error: undefined };
  return { completed: false, lastStep, error: `child exited with status ${code} before the kill: ${stderr.trim()}` };
}

/**
 * Maps a uniform number to a kill: one kill in four lands anywhere in a run (opening the flash included),
 * three in four after the focus step starts, where the writes are. Anchoring those to the step's own line keeps
 * them on the writes even when a loaded machine makes opening the flash slower than it was at calibration.
 */
function planKill(uniform: number, timing: RunTiming, focusStep: string): KillPlan {
  if (uniform < 0.25) return { anchor: 'ready', delayMs: (uniform / 0.25) * timing.windowMs };
  return { anchor: focusStep, delayMs: ((uniform - 0.25) / 0.75) * timing.afterFocusMs };
}

/** Medians of unkilled runs, with a 10 % margin on the two windows. */
interface RunTiming {
  /** From the child's ready line to its done line. */
  windowMs: number;
  /** From the ready line to the focus step's line. */
  focusMs: number;
  /** From the focus step's line to the done line. */
  afterFocusMs: number;
}

/** Times five unkilled runs of the scenario; medians keep one run slowed by other load from skewing the window. */
async function calibrate(scenario: string, template: string, calibrationDir: string): Promise<RunTiming> {
  const focusStep = `step ${SCENARIOS[scenario]!.focusStep}\n`;
  const runs: Array<{ ready: number; focus: number; done: number }> = [];
  for (let run = 0; run < 5; run++) {
    await cp(template, calibrationDir, { recursive: true });
    const child = spawn(process.execPath, [CHILD_SCRIPT, scenario, calibrationDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    const times = { ready: 0, focus: 0, done: 0 };
    child.stdout!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      const now = performance.now();
      if (text.startsWith('ready')) times.ready = now;
      if (times.focus === 0 && text.includes(focusStep)) times.focus = now;
      if (text.includes('done\n')) times.done = now;
    });
    const [code] = (await exited) as [number | null];
    if (code !== 0 || times.done === 0 || times.focus === 0) {
      throw new Error(`power-loss scenario ${scenario} failed without a kill (status ${code}) or never announced step ${SCENARIOS[scenario]!.focusStep}`);
    }
    runs.push(times);
    await rm(calibrationDir, { recursive: true, force: true });
  }

  const median = (values: number[]) => values.sort((x, y) => x - y)[Math.floor(values.length / 2)]!;
  return {
    windowMs: median(runs.map((run) => run.done - run.ready)) * 1.1,
    focusMs: median(runs.map((run) => run.focus - run.ready)),
    afterFocusMs: median(runs.map((run) => run.done - run.focus)) * 1.1,
  };
}

/** Sleeps with sub-millisecond precision: a timer for the bulk, then a short spin, since timers round to 1 ms. */
async function sleepPrecisely(delayMs: number): Promise<void> {
  const deadline = performance.now() + delayMs;
  if (delayMs > 2) await new Promise((resolve) => setTimeout(resolve, delayMs - 1.5));
  while (performance.now() < deadline) {
    // Spin for the last fraction of a millisecond.
  }
}

/** Returns a uniform number in [0, 1) derived from the run's seed and the trial number (SplitMix32-style mixing). */
export function seededRandom(seed: number, trial: number): number {
  let state = (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(trial + 1, 0x85ebca6b)) >>> 0;
  state = Math.imul(state ^ (state >>> 16), 0x7feb352d) >>> 0;
  state = Math.imul(state ^ (state >>> 15), 0x846ca68b) >>> 0;
  state = (state ^ (state >>> 16)) >>> 0;
  return state / 2 ** 32;
}
