/**
 * The delta decoder's hottest loop as a small WebAssembly function: adding a copy's difference tokens to the
 * source bytes already in the output. A fresh process runs a JavaScript loop in V8's interpreter until the
 * optimizing compiler, on a background thread, has compiled it. WebAssembly is compiled before its first call.
 * On the esbuild pair the first section's differences took 4 to 6 ms in JavaScript and 0.6 ms here
 * (docs/benchmarks.md has the runs).
 *
 * The function handles the common tokens only, run varints of one to three bytes each followed by a difference
 * byte, and stops at any other token without consuming it. The decoder's JavaScript loop then reads that token
 * with all its checks and error messages, so both paths accept and reject exactly the same bodies.
 */

/** WebAssembly pages are 64 KiB. */
const PAGE_SIZE = 1 << 16;

/** Opcodes and types used below, from the WebAssembly 1.0 binary format (section 5.4 of the specification). */
const I32 = 0x7f;
const EMPTY_BLOCK = 0x40;
const BLOCK = 0x02;
const LOOP = 0x03;
const IF = 0x04;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const RETURN = 0x0f;
const I32_EQ = 0x46;
const I32_GT_U = 0x4b;
const I32_GE_U = 0x4f;
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const I32_AND = 0x71;
const I32_OR = 0x72;
const I32_SHL = 0x74;

const get = (local: number): number[] => [0x20, local];
const set = (local: number): number[] => [0x21, local];
const tee = (local: number): number[] => [0x22, local];
const setPosition = [0x24, 0];
const constant = (value: number): number[] => [0x41, ...signedLeb(value)];
/** i32.load8_u and i32.store8 with alignment 1 and offset 0. */
const load8 = [0x2d, 0, 0];
const store8 = [0x3a, 0, 0];

// Parameters, then locals, by index.
const AT = 0;
const END_AT = 1;
const OUTPUT = 2;
const LENGTH = 3;
const POSITION = 4;
const RUN_END = 5;
const BYTE = 6;
const TOKEN = 7;
const INDEX = 8;
const LOCAL_COUNT = 5;

/** Returns with the next token's offset inverted (-1 - offset) and the copy position in the `position` global. */
const stopAtToken = [...get(POSITION), ...setPosition, ...constant(-1), ...get(TOKEN), I32_SUB];

/** Branches out to the stop when AT has reached END_AT; `depth` is the number of blocks between here and the stop. */
const stopAtEnd = (depth: number): number[] => [...get(AT), ...get(END_AT), I32_GE_U, BR_IF, depth];

const advance = [...get(AT), ...constant(1), I32_ADD, ...set(AT)];

/**
 * add(at, end, output, length): adds the tokens at [at, end) to the copy of `length` bytes at `output`.
 * Returns the offset after the copy's closing run, or -1 - offset of the first token it left to the caller.
 */
const ADD_BODY = [
  BLOCK, EMPTY_BLOCK,
  LOOP, EMPTY_BLOCK,
  ...get(AT), ...set(TOKEN),

  // The run: a varint of one to three bytes. A longer one (runs fit in 21 bits) is left to the caller.
  ...stopAtEnd(1),
  ...get(AT), ...load8, ...tee(BYTE), ...constant(0x7f), I32_AND, ...set(RUN_END),
  ...advance,
  ...get(BYTE), ...constant(0x80), I32_AND, IF, EMPTY_BLOCK,
  ...stopAtEnd(2),
  ...get(AT), ...load8, ...tee(BYTE), ...constant(0x7f), I32_AND, ...constant(7), I32_SHL, ...get(RUN_END), I32_OR, ...set(RUN_END),
  ...advance,
  ...get(BYTE), ...constant(0x80), I32_AND, IF, EMPTY_BLOCK,
  ...stopAtEnd(3),
  ...get(AT), ...load8, ...tee(BYTE), ...constant(0x80), I32_AND, BR_IF, 3,
  ...get(BYTE), ...constant(14), I32_SHL, ...get(RUN_END), I32_OR, ...set(RUN_END),
  ...advance,
  END,
  END,

  // A run that reaches the copy's end closes it.
  ...get(POSITION), ...get(RUN_END), I32_ADD, ...tee(RUN_END), ...get(LENGTH), I32_EQ, IF, EMPTY_BLOCK,
  ...get(RUN_END), ...setPosition, ...get(AT), RETURN,
  END,

  // A run past the copy, or no difference byte after the run, is an error that the caller names.
  ...get(RUN_END), ...get(LENGTH), I32_GT_U, BR_IF, 1,
  ...stopAtEnd(1),

  // output[output + run end] += difference byte, modulo 256.
  ...get(OUTPUT), ...get(RUN_END), I32_ADD, ...tee(INDEX),
  ...get(INDEX), ...load8, ...get(AT), ...load8, I32_ADD, ...store8,
  ...advance,
  ...get(RUN_END), ...constant(1), I32_ADD, ...set(POSITION),
  BR, 0,
  END,
  END,
  ...stopAtToken,
  END,
];

/** The whole module: one imported memory, one function, one mutable global, both exported. */
function moduleBytes(): Uint8Array {
  const name = (text: string): number[] => [text.length, ...Buffer.from(text, 'latin1')];
  const section = (id: number, contents: number[]): number[] => [id, ...unsignedLeb(contents.length), ...contents];
  const code = [1, LOCAL_COUNT, I32, ...ADD_BODY];

  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 4, I32, I32, I32, I32, 1, I32]),
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, 0x00, 1]),
    ...section(3, [1, 0]),
    ...section(6, [1, I32, 0x01, ...constant(0), END]),
    ...section(7, [2, ...name('add'), 0x00, 0, ...name('position'), 0x03, 0]),
    ...section(10, [1, ...unsignedLeb(code.length), ...code]),
  ]);
}

function unsignedLeb(value: number): number[] {
  const bytes: number[] = [];
  do {
    const low = value & 0x7f;
    value >>>= 7;
    bytes.push(value === 0 ? low : low | 0x80);
  } while (value !== 0);
  return bytes;
}

function signedLeb(value: number): number[] {
  const bytes: number[] = [];
  for (;;) {
    const low = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (low & 0x40) === 0) || (value === -1 && (low & 0x40) !== 0);
    bytes.push(done ? low : low | 0x80);
    if (done) return bytes;
  }
}

/** The compiled module, shared by every decoder of the process; undefined where WebAssembly is missing. */
let compiled: WebAssembly.Module | null | undefined = null;

function compiledModule(): WebAssembly.Module | undefined {
  if (compiled === null) {
    // `node --jitless` has no WebAssembly global; the decoder then runs its JavaScript loop alone.
    compiled = typeof WebAssembly === 'object' ? new WebAssembly.Module(moduleBytes()) : undefined;
  }
  return compiled;
}

/** The kernel bound to a memory of its own, which the decoder uses as its workspace. */
export interface DifferenceKernel {
  /** The kernel's memory as a Buffer; offsets passed to `add` index it. */
  readonly workspace: Buffer;
  /**
   * Adds the difference tokens at [at, end) of the workspace to the copy of `length` bytes at `output`. Returns
   * the offset after the copy's tokens, or, when it stopped at a token it leaves to the caller, -1 minus that
   * token's offset, with the copy's position so far in `position()`.
   */
  add(at: number, end: number, output: number, length: number): number;
  position(): number;
}

/**
 * Creates a kernel whose workspace holds `size` bytes, or returns undefined where WebAssembly is missing or its
 * memory cannot be reserved (V8 reserves address space for each memory, so a limit on it can refuse one).
 */
export function createDifferenceKernel(size: number): DifferenceKernel | undefined {
  const module = compiledModule();
  if (module === undefined) return undefined;

  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: Math.ceil(size / PAGE_SIZE) });
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as {
    add: (at: number, end: number, output: number, length: number) => number;
    position: WebAssembly.Global;
  };

  return {
    // The memory never grows, so this view stays attached.
    workspace: Buffer.from(memory.buffer, 0, size),
    add: exports.add,
    position: () => exports.position.value as number,
  };
}
