/**
 * Power-loss scenario for a whole upgrade through the engine: fetch, verify, apply into staging, install, boot
 * switch and counter. The harness in test/flash kills it at random moments; afterwards the flash must hold a
 * verified boot image, and a retried upgrade must finish.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { codecByName } from '../../delta/index.js';
import { FlashStore } from '../../flash/index.js';
import { installedImageName, runUpgrade } from '../../upgrade/index.js';
import { createPatch, digestFile, generateKeyPair } from '../../verifier/index.js';
import { makeImage, sha256 } from './fixtures.js';

const PLATFORM = 'plbox';
const RUNNING_NAME = 'core.bin';
const SECURITY_COUNTER = 11n;
/** Large enough that applying takes a good share of the run, so many kills land in it. */
const IMAGE_BYTES = 1536 * 1024;

interface UpgradeInputs {
  sourceSha256: string;
  targetSha256: string;
  targetName: string;
}

class InvariantError extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}

export const upgradeScenario = {
  focusStep: 'applying',

  async prepareTemplate(templateDir: string): Promise<void> {
    const source = makeImage(IMAGE_BYTES, 0);
    const target = makeImage(IMAGE_BYTES + 4096, 3);
    const key = generateKeyPair();
    // The full codec makes the device decompress the whole image, which keeps the apply phase long enough to hit.
    const patch = await createPatch({
      source,
      target,
      platform: PLATFORM,
      sourceVersion: '1.0',
      targetVersion: '2.0',
      securityCounter: SECURITY_COUNTER,
      codec: codecByName('full')!,
      keys: [key],
    });
    await mkdir(join(templateDir, 'patches'));
    await writeFile(join(templateDir, 'patches', patch.fileName), patch.bytes);
    await writeFile(join(templateDir, 'source.bin'), source);
    const inputs: UpgradeInputs = { sourceSha256: sha256(source), targetSha256: sha256(target), targetName: installedImageName(PLATFORM, '2.0') };
    await writeFile(join(templateDir, 'inputs.json'), JSON.stringify(inputs));
    await FlashStore.init(join(templateDir, 'flash'), {
      capacityBytes: 8 * 1024 * 1024,
      platform: PLATFORM,
      imageName: RUNNING_NAME,
      version: '1.0',
      fromFile: join(templateDir, 'source.bin'),
      trustedKeys: [Buffer.from(key.publicKey).toString('hex')],
    });
  },

  async run(trialDir: string, mark: (step: string) => void): Promise<void> {
    mark('open');
    const outcome = await upgradeOnce(trialDir, mark);
    if (outcome !== 'installed' && outcome !== 'alreadyAtTarget') throw new Error(`upgrade ended ${outcome}`);
  },

  async verifyAndRetry(trialDir: string): Promise<void> {
    const inputs = JSON.parse(await readFile(join(trialDir, 'inputs.json'), 'utf8')) as UpgradeInputs;
    const flashDir = join(trialDir, 'flash');
    const store = await FlashStore.open(flashDir);
    const state = store.state();

    const staging = await readdir(join(flashDir, 'staging'));
    check(staging.length === 0, `staging leftovers after open: ${staging.join(', ')}`);
    check(state.runningImage === RUNNING_NAME, `running image is ${state.runningImage}`);
    check((await digestFile(store.imagePath(RUNNING_NAME))).sha256 === inputs.sourceSha256, 'the running image changed');

    const boot = store.image(state.bootImage);
    check((await digestFile(store.imagePath(boot.name))).sha256 === boot.sha256, `boot image ${boot.name} does not hash to its record`);
    check([RUNNING_NAME, inputs.targetName].includes(boot.name), `boot image is ${boot.name}`);
    if (boot.name === inputs.targetName) check(boot.sha256 === inputs.targetSha256, 'the boot image is not the target');

    const retried = await upgradeOnce(trialDir, () => undefined);
    check(retried === 'installed' || retried === 'alreadyAtTarget', `the retried upgrade ended ${retried}`);
    const finished = (await FlashStore.open(flashDir)).state();
    check(finished.bootImage === inputs.targetName, `after the retry the boot image is ${finished.bootImage}`);
    check(finished.settings.securityCounter === SECURITY_COUNTER, `after the retry the security counter is ${finished.settings.securityCounter}`);
  },
};

/** Runs one upgrade on the trial's flash, announcing each phase as a step; returns how it ended. */
async function upgradeOnce(trialDir: string, mark: (step: string) => void): Promise<string> {
  const store = await FlashStore.open(join(trialDir, 'flash'));
  mark('lock');
  const lock = await store.lock();
  let phase = '';
  try {
    const outcome = await runUpgrade(
      store,
      { action: 'upgrade', image: RUNNING_NAME, urlPrefix: `${pathToFileURL(join(trialDir, 'patches')).href}/` },
      {
        onStatus: (status) => {
          if (status.phase === phase) return;
          phase = status.phase;
          mark(phase);
        },
      },
    );
    return outcome.failCause ? `${outcome.result} (${outcome.failCause}: ${outcome.failReason})` : outcome.result;
  } finally {
    await lock.release();
  }
}
