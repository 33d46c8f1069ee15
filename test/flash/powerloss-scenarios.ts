/**
 * Scenarios for the power-loss harness. A scenario's run() is the work the child process does until it is
 * killed. Its verifyAndRetry() runs in the harness after the kill, checks what survived and then finishes the
 * work. The child and the harness look a scenario up by name in SCENARIOS.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { FlashStore, type ImageRecord } from '../../flash/index.js';
import { digestFile, generateKeyPair } from '../../verifier/index.js';
import { upgradeScenario } from '../upgrade/powerloss-upgrade.js';

export interface PowerLossScenario {
  /** The step where the interesting writes begin; the harness aims most kills at or after it. */
  focusStep: string;
  /** Builds, once per run, the directory every trial starts from as a copy. */
  prepareTemplate(templateDir: string): Promise<void>;
  /** Does the work that gets killed; `mark` announces each step so the harness can tell where a kill landed. */
  run(trialDir: string, mark: (step: string) => void): Promise<void>;
  /** Checks the state a kill left, then retries the work and checks it completes. Throws with what is wrong. */
  verifyAndRetry(trialDir: string): Promise<void>;
}

/** Thrown by a scenario check; the message names the trial directory's broken invariant. */
export class InvariantError extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}

const RUNNING_IMAGE_BYTES = 256 * 1024;
const NEW_IMAGE_BYTES = 384 * 1024;
const WRITE_CHUNK_BYTES = 32 * 1024;
const NEW_URL_PREFIX = 'tftp://127.0.0.1/patches/';
const NEW_SECURITY_COUNTER = 7n;

interface InstallInputs {
  running: ImageRecord;
  target: ImageRecord;
  trustedKeys: string[];
}

/**
 * Installs a new image beside the running one, sets it to boot and stores new settings, all through the flash
 * store, as the upgrade engine does after it has applied a patch.
 */
const installScenario: PowerLossScenario = {
  focusStep: 'lock',

  async prepareTemplate(templateDir) {
    const runningBytes = randomBytes(RUNNING_IMAGE_BYTES);
    const targetBytes = randomBytes(NEW_IMAGE_BYTES);
    const trustedKeys = [Buffer.from(generateKeyPair().publicKey).toString('hex')];
    const running: ImageRecord = { name: 'old.bin', platform: 'plbox', version: '1.0', size: runningBytes.length, sha256: sha256Of(runningBytes) };
    const target: ImageRecord = { name: 'new.bin', platform: 'plbox', version: '2.0', size: targetBytes.length, sha256: sha256Of(targetBytes) };

    await writeFile(join(templateDir, 'old.bin'), runningBytes);
    await writeFile(join(templateDir, 'new.bin'), targetBytes);
    await writeFile(join(templateDir, 'inputs.json'), JSON.stringify({ running, target, trustedKeys } satisfies InstallInputs));
    await FlashStore.init(join(templateDir, 'flash'), {
      capacityBytes: 2 * 1024 * 1024,
      platform: running.platform,
      imageName: running.name,
      version: running.version,
      fromFile: join(templateDir, 'old.bin'),
      trustedKeys,
    });
  },

  async run(trialDir, mark) {
    mark('open');
    const store = await FlashStore.open(join(trialDir, 'flash'));
    const inputs = await readInputs(trialDir);
    await installTarget(store, trialDir, inputs, mark);
  },

  async verifyAndRetry(trialDir) {
    const inputs = await readInputs(trialDir);
    const flashDir = join(trialDir, 'flash');
    const store = await FlashStore.open(flashDir);
    await checkAfterKill(store, flashDir, inputs);

    if (store.state().bootImage !== inputs.target.name || store.state().settings.securityCounter !== NEW_SECURITY_COUNTER) {
      await installTarget(store, trialDir, inputs, () => undefined);
    }

    const finished = await FlashStore.open(flashDir);
    const state = finished.state();
    check(state.bootImage === inputs.target.name, `after the retry the boot image is ${state.bootImage}, expected ${inputs.target.name}`);
    check((await digestFile(finished.imagePath(inputs.target.name))).sha256 === inputs.target.sha256, 'after the retry the new image does not hash to its record');
    check(state.settings.securityCounter === NEW_SECURITY_COUNTER, `after the retry the security counter is ${state.settings.securityCounter}`);

    await finished.reload();
    check(finished.state().runningImage === inputs.target.name, `after reload the running image is ${finished.state().runningImage}`);
  },
};

async function installTarget(store: FlashStore, trialDir: string, inputs: InstallInputs, mark: (step: string) => void): Promise<void> {
  mark('lock');
  const lock = await store.lock();

  if (store.state().bootImage !== inputs.target.name) {
    mark('stage');
    const bytes = await readFile(join(trialDir, 'new.bin'));
    const writer = await store.createStagingWriter('image');
    for (let offset = 0; offset < bytes.length; offset += WRITE_CHUNK_BYTES) {
      await writer.write(bytes.subarray(offset, offset + WRITE_CHUNK_BYTES));
    }
    mark('stage-sync');
    await writer.finish();

    mark('install');
    await store.installImage(writer.path, inputs.target);
    mark('set-boot');
    await store.setBootImage(inputs.target.name);
  }

  mark('settings');
  await store.updateSettings({ urlPrefix: NEW_URL_PREFIX, securityCounter: NEW_SECURITY_COUNTER });
  mark('release');
  await lock.release();
}

/** The invariants a kill at any moment must keep. */
async function checkAfterKill(store: FlashStore, flashDir: string, inputs: InstallInputs): Promise<void> {
  const state = store.state();

  const staging = await readdir(join(flashDir, 'staging'));
  check(staging.length === 0, `staging leftovers after open: ${staging.join(', ')}`);
  const temporary = (await readdir(flashDir)).filter((entry) => entry.endsWith('.tmp'));
  check(temporary.length === 0, `temporary files after open: ${temporary.join(', ')}`);

  check(state.runningImage === inputs.running.name, `running image is ${state.runningImage}, expected ${inputs.running.name}`);
  const running = await digestFile(store.imagePath(inputs.running.name));
  check(running.sha256 === inputs.running.sha256 && running.size === inputs.running.size, 'the running image changed');

  const boot = store.image(state.bootImage);
  const bootActual = await digestFile(store.imagePath(state.bootImage));
  check(bootActual.sha256 === boot.sha256 && bootActual.size === boot.size, `boot image ${boot.name} does not hash to its record`);
  check([inputs.running.name, inputs.target.name].includes(boot.name), `boot image is ${boot.name}`);

  const target = state.images.find((image) => image.name === inputs.target.name);
  if (target) {
    check(JSON.stringify(target) === JSON.stringify(inputs.target), `the new image's record is ${JSON.stringify(target)}`);
    const targetActual = await digestFile(store.imagePath(target.name));
    check(targetActual.sha256 === target.sha256, 'the new image is recorded but its bytes differ');
  }
  check(state.images.length === (target ? 2 : 1), `unexpected images: ${state.images.map((image) => image.name).join(', ')}`);

  // Settings change in one write, so they are either all old or all new.
  const settings = state.settings;
  const old = settings.urlPrefix === '' && settings.securityCounter === 0n;
  const updated = settings.urlPrefix === NEW_URL_PREFIX && settings.securityCounter === NEW_SECURITY_COUNTER;
  check(old || updated, `mixed settings: URL prefix ${JSON.stringify(settings.urlPrefix)}, security counter ${settings.securityCounter}`);
  check(JSON.stringify(settings.trustedKeys) === JSON.stringify(inputs.trustedKeys), 'the trusted keys changed');
}

async function readInputs(trialDir: string): Promise<InstallInputs> {
  return JSON.parse(await readFile(join(trialDir, 'inputs.json'), 'utf8')) as InstallInputs;
}

function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export const SCENARIOS: Record<string, PowerLossScenario> = {
  install: installScenario,
  upgrade: upgradeScenario,
};
