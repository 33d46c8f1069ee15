/**
 * Two releases of a made-up router image, generated deterministically so the demo needs no files. They are
 * built the way compiled firmware changes between releases: the second has a function inserted in the middle,
 * which shifts every later absolute address, plus a few edited functions and a new version string.
 */

const FUNCTION_COUNT = 3000;
const BASE_ADDRESS = 0x8000_0000;

/** A small deterministic pseudo-random generator (xorshift32), so every run makes the same bytes. */
function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

interface FunctionBody {
  code: Buffer;
  /** Offsets in `code` of 32-bit absolute addresses of other functions, with the callee's index. */
  calls: Array<{ offset: number; callee: number }>;
}

function makeFunctions(seed: number): FunctionBody[] {
  const random = xorshift(seed);
  const functions: FunctionBody[] = [];
  for (let index = 0; index < FUNCTION_COUNT; index++) {
    const length = 96 + (random() % 400);
    const code = Buffer.alloc(length);
    const calls: FunctionBody['calls'] = [];
    let offset = 0;
    while (offset + 8 <= length) {
      if (random() % 5 === 0) {
        // A call instruction: an opcode byte pattern followed by the callee's absolute address.
        code.writeUInt32LE(0xe8_00_00_94, offset);
        calls.push({ offset: offset + 4, callee: random() % FUNCTION_COUNT });
      } else {
        // Ordinary instructions from a small alphabet, as real code reuses a few encodings heavily.
        code.writeUInt32LE(0x1000_0000 | ((random() % 64) << 16) | (random() % 16), offset);
        code.writeUInt32LE(0xd503_201f, offset + 4);
      }
      offset += 8;
    }
    functions.push({ code, calls });
  }
  return functions;
}

function link(functions: FunctionBody[], version: string): Buffer {
  const header = Buffer.alloc(256);
  header.write(`RTR-9000 core image ${version}\n`, 0, 'latin1');

  const addresses: number[] = [];
  let address = BASE_ADDRESS + header.length;
  for (const body of functions) {
    addresses.push(address);
    address += body.code.length;
  }

  const linked = functions.map((body) => {
    const code = Buffer.from(body.code);
    for (const call of body.calls) code.writeUInt32LE(addresses[Math.min(call.callee, functions.length - 1)]!, call.offset);
    return code;
  });
  const strings = Buffer.from(`build ${version}; (c) example vendor; ${'configuration tables '.repeat(2000)}`, 'latin1');
  return Buffer.concat([header, ...linked, strings]);
}

/** Returns the demo's old (1.0.0) and new (1.1.0) router images, about 1 MB each. */
export function makeDemoImages(): { old: Buffer; new: Buffer } {
  const functions = makeFunctions(0x5eed_2026);
  const old = link(functions, '1.0.0');

  const changed: FunctionBody[] = functions.map((body) => ({ code: Buffer.from(body.code), calls: body.calls }));
  const inserted = makeFunctions(0x0ddba11)[0]!;
  changed.splice(FUNCTION_COUNT / 2, 0, inserted);
  const random = xorshift(42);
  for (let edit = 0; edit < 40; edit++) {
    const body = changed[random() % changed.length]!;
    body.code.writeUInt32LE(random(), (random() % Math.floor(body.code.length / 8)) * 8);
  }
  return { old, new: link(changed, '1.1.0') };
}
