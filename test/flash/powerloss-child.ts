/**
 * Child process of the power-loss harness: runs one scenario on a trial directory until the harness kills it.
 * Usage: node powerloss-child.js SCENARIO TRIAL_DIR. Writes "ready", then "step NAME" lines, then "done".
 */
import { SCENARIOS } from './powerloss-scenarios.js';

const [scenarioName, trialDir] = process.argv.slice(2);
const scenario = scenarioName === undefined ? undefined : SCENARIOS[scenarioName];
if (!scenario || trialDir === undefined) {
  process.stderr.write(`usage: powerloss-child SCENARIO TRIAL_DIR; scenarios: ${Object.keys(SCENARIOS).join(', ')}\n`);
  process.exit(2);
}

// Writes to a pipe are synchronous on Linux, so a step line reaches the harness before the step starts.
process.stdout.write('ready\n');
await scenario.run(trialDir, (step) => process.stdout.write(`step ${step}\n`));
process.stdout.write('done\n');
