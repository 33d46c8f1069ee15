/**
 * `npm run soak:powerloss -- --trials N [--seed S] [--scenario NAME] [--concurrency C] [--verbose]`: runs many
 * power-loss trials and prints where the kills landed; exits with status 1 when any trial broke an invariant.
 */
import { parseArgs } from 'node:util';

import { runPowerLossTrials } from './powerloss.js';

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '1000' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    scenario: { type: 'string', default: 'install' },
    concurrency: { type: 'string', default: '2' },
    'show-every': { type: 'string', default: '10' },
    verbose: { type: 'boolean', default: false },
  },
});

const trials = Number(values.trials);
const seed = Number(values.seed);
const concurrency = Number(values.concurrency);
const showEvery = Number(values['show-every']);
for (const [name, value] of [['trials', trials], ['seed', seed], ['concurrency', concurrency], ['show-every', showEvery]] as const) {
  if (!Number.isSafeInteger(value) || value < 0) {
    process.stderr.write(`soak:powerloss: invalid --${name}: expected a whole number, got ${JSON.stringify(values[name])}\n`);
    process.exit(2);
  }
}

const started = Date.now();
const summary = await runPowerLossTrials({
  scenario: values.scenario!,
  trials,
  seed,
  concurrency: Math.max(1, concurrency),
  showEvery,
  log: values.verbose ? (line) => process.stdout.write(`${line}\n`) : undefined,
});

process.stdout.write(
  `scenario ${values.scenario}, seed ${seed}: ${summary.trials} trials, ${summary.kills} kills in ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
    `kill window ${summary.windowMs.toFixed(1)} ms (focus from ${summary.focusMs.toFixed(1)} ms), ${summary.completed} finished before the kill\n`,
);
for (const [step, count] of Object.entries(summary.killsPerStep)) process.stdout.write(`  killed during ${step}: ${count}\n`);
for (const failure of summary.failures) {
  process.stdout.write(`FAILED trial ${failure.trial} (kill ${failure.kill}): ${failure.message}\n`);
}
process.exitCode = summary.failures.length > 0 ? 1 : 0;
