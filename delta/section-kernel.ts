/**
 * The delta decoder's hot loops as WebAssembly functions over the decoder's workspace. A fresh process runs
 * JavaScript loops in V8's interpreter until the optimizing compiler has compiled them on a background thread, and
 * on a 2-core device that compiler competes with the apply for the second core. WebAssembly is compiled before its
 * first call: building, compiling and instantiating this module takes about 3 ms once per process. Its functions:
 *
 * - add: adds a copy's difference tokens to the source bytes already in the output;
 * - controls: runs a section's control entries, placing literals and recording copies in the copy tables;
 * - prepare, orderByKeys and group: sort the copies by source position and gather them into spans to read;
 * - scatter: moves copies from the span buffer, just read from the source, to their places in the output.
 *
 * add and controls handle the common cases only: varints of at most three or four bytes, and entries that pass
 * every check. They stop before anything else without consuming it, and the decoder's JavaScript code then reads
 * that token or entry with all its checks and error messages. Both paths therefore accept and reject exactly the
 * same bodies; a test compares them against `node --jitless`, which has no WebAssembly. On the esbuild pair,
 * fresh applies took a median of 35.8 ms with all of them and 49.1 ms with add alone (docs/benchmarks.md).
 */
import { SECTION_ENTRY_LIMIT } from './delta-format.js';

/** WebAssembly pages are 64 KiB. */
const PAGE_SIZE = 1 << 16;

/** Opcodes and types used below, from the binary format of the WebAssembly 2.0 specification. */
const I32 = 0x7f;
const F64 = 0x7c;
const EMPTY_BLOCK = 0x40;
const BLOCK = 0x02;
const LOOP = 0x03;
const IF = 0x04;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const RETURN = 0x0f;
const CALL = 0x10;
const I32_EQZ = 0x45;
const I32_EQ = 0x46;
const I32_GT_U = 0x4b;
const I32_GE_U = 0x4f;
const F64_LT = 0x63;
const F64_GT = 0x64;
const F64_SUB = 0xa1;
const F64_MUL = 0xa2;
const F64_MAX = 0xa5;
const I32_WRAP_I64 = 0xa7;
const I64_TRUNC_F64_U = 0xb1;
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const I32_AND = 0x71;
const I32_OR = 0x72;
const I32_XOR = 0x73;
const I32_SHL = 0x74;
const I32_SHR_U = 0x76;
const F64_ADD = 0xa0;
const I32_TRUNC_F64_S = 0xaa;
const F64_CONVERT_I32_S = 0xb7;
const F64_CONVERT_I32_U = 0xb8;
const f64Constant = (value: number): number[] => {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleLE(value);
  return [0x44, ...bytes];
};
const F64_ZERO = f64Constant(0);
/** memory.copy within memory 0 (bulk memory operations, part of WebAssembly 2.0). */
const MEMORY_COPY = [0xfc, 0x0a, 0x00, 0x00];

const get = (local: number): number[] => [0x20, local];
const set = (local: number): number[] => [0x21, local];
const tee = (local: number): number[] => [0x22, local];
const setGlobal = (index: number): number[] => [0x24, index];
const getGlobal = (index: number): number[] => [0x23, index];
const constant = (value: number): number[] => [0x41, ...signedLeb(value)];
/** i32.load8_u and i32.store8 with alignment 1 and offset 0. */
const load8 = [0x2d, 0, 0];
const store8 = [0x3a, 0, 0];
/** Loads and stores of aligned 4-byte and 8-byte values at a constant offset from the address on the stack. */
const load32 = (offset: number): number[] => [0x28, 2, ...unsignedLeb(offset)];
const store32 = (offset: number): number[] => [0x36, 2, ...unsignedLeb(offset)];
const loadF64 = (offset: number): number[] => [0x2b, 3, ...unsignedLeb(offset)];
const storeF64 = (offset: number): number[] => [0x39, 3, ...unsignedLeb(offset)];

/** Globals by index: the copy position where add stopped, and the offset after the varint that varint read. */
const POSITION_GLOBAL = 0;
const NEXT_GLOBAL = 1;
const setPosition = setGlobal(POSITION_GLOBAL);

/** Functions by index, in the order of the code section. */
const VARINT_FUNCTION = 1;

/**
 * Layout of the copy tables that controls and scatter share with the decoder, from the address they are given:
 * a state block, then per copy its source position, length and output offset, then the copy order of scatter.
 * The state block contains the i32 fields in TABLE_STATE by index, and the cursor and source size as doubles.
 */
export const TABLE_STATE = { at: 0, end: 1, literalAt: 2, literalEnd: 3, filled: 4, room: 5, copyCount: 6, entryCount: 7 };
export const TABLE_CURSOR = 4;
export const TABLE_SOURCE_SIZE = 5;
export const COPY_SOURCE_AT = 64;
export const COPY_LENGTH_AT = COPY_SOURCE_AT + 8 * SECTION_ENTRY_LIMIT;
export const COPY_OFFSET_AT = COPY_LENGTH_AT + 4 * SECTION_ENTRY_LIMIT;
export const ORDER_AT = COPY_OFFSET_AT + 4 * SECTION_ENTRY_LIMIT;
export const SORT_KEYS_AT = ORDER_AT + 4 * SECTION_ENTRY_LIMIT;
export const SPAN_POSITION_AT = SORT_KEYS_AT + 8 * SECTION_ENTRY_LIMIT;
export const SPAN_LENGTH_AT = SPAN_POSITION_AT + 8 * SECTION_ENTRY_LIMIT;
export const SPAN_FIRST_AT = SPAN_LENGTH_AT + 4 * SECTION_ENTRY_LIMIT;
export const TABLES_SIZE = SPAN_FIRST_AT + 4 * (SECTION_ENTRY_LIMIT + 1);

// add: parameters, then locals, by index.
const AT = 0;
const END_AT = 1;
const OUTPUT = 2;
const LENGTH = 3;
const POSITION = 4;
const RUN_END = 5;
const BYTE = 6;
const TOKEN = 7;
const INDEX = 8;
const ADD_LOCALS = 5;

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


/** varint: parameters, then locals, by index. */
const V = { at: 0, end: 1, byte: 2, value: 3 };

/** Reads the varint byte that carries bits `shift` to `shift` + 6, and returns the value if it is the last. */
const varintByte = (shift: number): number[] => [
  ...get(V.at), ...get(V.end), I32_GE_U, IF, EMPTY_BLOCK, ...constant(-1), RETURN, END,
  ...get(V.at), ...load8, ...tee(V.byte), ...constant(0x7f), I32_AND, ...constant(shift), I32_SHL, ...get(V.value), I32_OR, ...set(V.value),
  ...get(V.at), ...constant(1), I32_ADD, ...set(V.at),
  ...get(V.byte), ...constant(0x80), I32_AND, I32_EQZ, IF, EMPTY_BLOCK, ...get(V.at), ...setGlobal(NEXT_GLOBAL), ...get(V.value), RETURN, END,
];

/**
 * varint(at, end): reads a varint of one to four bytes at `at`, below `end`, and returns its value, below 2^28.
 * The offset after it is left in the NEXT global. A longer varint, or one cut by `end`, returns -1.
 */
const VARINT_BODY = [
  ...varintByte(0),
  ...varintByte(7),
  ...varintByte(14),
  ...get(V.at), ...get(V.end), I32_GE_U, IF, EMPTY_BLOCK, ...constant(-1), RETURN, END,
  ...get(V.at), ...load8, ...tee(V.byte), ...constant(0x80), I32_AND, IF, EMPTY_BLOCK, ...constant(-1), RETURN, END,
  ...get(V.at), ...constant(1), I32_ADD, ...setGlobal(NEXT_GLOBAL),
  ...get(V.byte), ...constant(21), I32_SHL, ...get(V.value), I32_OR,
  END,
];

/** controls: the parameter, then locals, by index. The doubles come last. */
const C = {
  base: 0, at: 1, end: 2, literalAt: 3, literalEnd: 4, filled: 5, room: 6, copyCount: 7, entryCount: 8,
  start: 9, seek: 10, copy: 11, literal: 12, cursor: 13, sourceSize: 14, moved: 15,
};
const C_I32_LOCALS = 12;
const C_F64_LOCALS = 3;

/** Reads the next varint of the entry into `local`, or stops before the entry. */
const entryVarint = (local: number): number[] => [
  ...get(C.at), ...get(C.end), CALL, VARINT_FUNCTION, ...tee(local), ...constant(-1), I32_EQ, BR_IF, 1,
  ...getGlobal(NEXT_GLOBAL), ...set(C.at),
];

/** Loads or stores a state field. `field` is an index into the i32 fields of the state block. */
const loadField = (local: number, field: number): number[] => [...get(C.base), ...load32(4 * field), ...set(local)];
const storeField = (field: number, local: number): number[] => [...get(C.base), ...get(local), ...store32(4 * field)];
/**
 * The address of entry `index` of a table of `width`-byte values, to which the table's offset is added; `base` and
 * `index` are locals.
 */
const entryAddress = (base: number, index: number, width: number): number[] => [...get(base), ...get(index), ...constant(Math.log2(width)), I32_SHL, I32_ADD];
const tableEntry = (index: number, width: number): number[] => entryAddress(C.base, index, width);

/**
 * controls(base): runs the control entries from the state at `base` until the end of the controls, or until an
 * entry it leaves to the caller. It leaves an entry with a varint longer than four bytes, one past the entry
 * limit, and every entry that fails a check. The state then points at that entry. The output starts at offset 0.
 */
const CONTROLS_BODY = [
  ...loadField(C.at, TABLE_STATE.at),
  ...loadField(C.end, TABLE_STATE.end),
  ...loadField(C.literalAt, TABLE_STATE.literalAt),
  ...loadField(C.literalEnd, TABLE_STATE.literalEnd),
  ...loadField(C.filled, TABLE_STATE.filled),
  ...loadField(C.room, TABLE_STATE.room),
  ...loadField(C.copyCount, TABLE_STATE.copyCount),
  ...loadField(C.entryCount, TABLE_STATE.entryCount),
  ...get(C.base), ...loadF64(8 * TABLE_CURSOR), ...set(C.cursor),
  ...get(C.base), ...loadF64(8 * TABLE_SOURCE_SIZE), ...set(C.sourceSize),

  BLOCK, EMPTY_BLOCK,
  LOOP, EMPTY_BLOCK,
  ...get(C.at), ...set(C.start),
  ...get(C.at), ...get(C.end), I32_GE_U, BR_IF, 1,
  ...get(C.entryCount), ...constant(SECTION_ENTRY_LIMIT), I32_GE_U, BR_IF, 1,
  ...entryVarint(C.seek),
  ...entryVarint(C.copy),
  ...entryVarint(C.literal),
  // The seek is zigzag coded: 0, 1, 2, 3 ... encode 0, -1, 1, -2 ...
  ...get(C.seek), ...constant(1), I32_SHR_U, ...constant(0), ...get(C.seek), ...constant(1), I32_AND, I32_SUB, I32_XOR, ...set(C.seek),

  // The checks of the decoder's runEntry, in its order; any failure stops before the entry.
  ...get(C.copy), ...get(C.literal), I32_ADD, ...get(C.room), ...get(C.filled), I32_SUB, I32_GT_U, BR_IF, 1,
  ...get(C.cursor), ...get(C.seek), F64_CONVERT_I32_S, F64_ADD, ...tee(C.moved), ...F64_ZERO, F64_LT, BR_IF, 1,
  ...get(C.moved), ...get(C.copy), F64_CONVERT_I32_U, F64_ADD, ...get(C.sourceSize), F64_GT, BR_IF, 1,
  ...get(C.literal), ...get(C.literalEnd), ...get(C.literalAt), I32_SUB, I32_GT_U, BR_IF, 1,

  ...get(C.moved), ...set(C.cursor),
  ...get(C.copy), IF, EMPTY_BLOCK,
  ...tableEntry(C.copyCount, 8), ...get(C.cursor), ...storeF64(COPY_SOURCE_AT),
  ...tableEntry(C.copyCount, 4), ...get(C.copy), ...store32(COPY_LENGTH_AT),
  ...tableEntry(C.copyCount, 4), ...get(C.filled), ...store32(COPY_OFFSET_AT),
  ...get(C.copyCount), ...constant(1), I32_ADD, ...set(C.copyCount),
  ...get(C.cursor), ...get(C.copy), F64_CONVERT_I32_U, F64_ADD, ...set(C.cursor),
  ...get(C.filled), ...get(C.copy), I32_ADD, ...set(C.filled),
  END,
  ...get(C.literal), IF, EMPTY_BLOCK,
  ...get(C.filled), ...get(C.literalAt), ...get(C.literal), ...MEMORY_COPY,
  ...get(C.literalAt), ...get(C.literal), I32_ADD, ...set(C.literalAt),
  ...get(C.filled), ...get(C.literal), I32_ADD, ...set(C.filled),
  END,
  ...get(C.entryCount), ...constant(1), I32_ADD, ...set(C.entryCount),
  BR, 0,
  END,
  END,

  ...storeField(TABLE_STATE.at, C.start),
  ...storeField(TABLE_STATE.literalAt, C.literalAt),
  ...storeField(TABLE_STATE.filled, C.filled),
  ...storeField(TABLE_STATE.copyCount, C.copyCount),
  ...storeField(TABLE_STATE.entryCount, C.entryCount),
  ...get(C.base), ...get(C.cursor), ...storeF64(8 * TABLE_CURSOR),
  END,
];

/** scatter: parameters, then locals, by index. */
const S = { first: 0, last: 1, base: 2, shift: 3, k: 4, index: 5 };

/**
 * scatter(first, last, base, shift): moves the copies order[first] to order[last - 1] of the tables at `base`,
 * each from its source position plus `shift` to its output offset. The decoder has checked every range.
 */
const SCATTER_BODY = [
  ...get(S.first), ...set(S.k),
  BLOCK, EMPTY_BLOCK,
  LOOP, EMPTY_BLOCK,
  ...get(S.k), ...get(S.last), I32_GE_U, BR_IF, 1,
  ...entryAddress(S.base, S.k, 4), ...load32(ORDER_AT), ...set(S.index),
  ...entryAddress(S.base, S.index, 4), ...load32(COPY_OFFSET_AT),
  ...get(S.shift), ...entryAddress(S.base, S.index, 8), ...loadF64(COPY_SOURCE_AT), F64_ADD, I32_TRUNC_F64_S,
  ...entryAddress(S.base, S.index, 4), ...load32(COPY_LENGTH_AT),
  ...MEMORY_COPY,
  ...get(S.k), ...constant(1), I32_ADD, ...set(S.k),
  BR, 0,
  END,
  END,
  END,
];

/** prepare and orderByKeys: parameters, then locals, by index. */
const P = { base: 0, count: 1, i: 2, sorted: 3, previous: 4, value: 5 };

/** Runs `body` for i from 0 to count - 1. */
const forEachCopy = (body: number[]): number[] => [
  BLOCK, EMPTY_BLOCK,
  LOOP, EMPTY_BLOCK,
  ...get(P.i), ...get(P.count), I32_GE_U, BR_IF, 1,
  ...body,
  ...get(P.i), ...constant(1), I32_ADD, ...set(P.i),
  BR, 0,
  END,
  END,
];

/**
 * prepare(base, count): sets order[i] to i and the sort key of copy i to its source position times the entry
 * limit plus i, so that sorting the keys sorts the copies by position, ties by index. Returns 1 when the copies
 * are in source order already, 0 otherwise.
 */
const PREPARE_BODY = [
  ...constant(1), ...set(P.sorted),
  ...forEachCopy([
    ...entryAddress(P.base, P.i, 4), ...get(P.i), ...store32(ORDER_AT),
    ...entryAddress(P.base, P.i, 8), ...loadF64(COPY_SOURCE_AT), ...set(P.value),
    ...entryAddress(P.base, P.i, 8), ...get(P.value), ...f64Constant(SECTION_ENTRY_LIMIT), F64_MUL, ...get(P.i), F64_CONVERT_I32_U, F64_ADD, ...storeF64(SORT_KEYS_AT),
    ...get(P.i), IF, EMPTY_BLOCK,
    ...get(P.value), ...get(P.previous), F64_LT, IF, EMPTY_BLOCK, ...constant(0), ...set(P.sorted), END,
    END,
    ...get(P.value), ...set(P.previous),
  ]),
  ...get(P.sorted),
  END,
];

/** orderByKeys(base, count): sets order[i] to the copy index that sorted key i carries in its low bits. */
const ORDER_BY_KEYS_BODY = [
  ...forEachCopy([
    ...entryAddress(P.base, P.i, 4),
    ...entryAddress(P.base, P.i, 8), ...loadF64(SORT_KEYS_AT), I64_TRUNC_F64_U, I32_WRAP_I64, ...constant(SECTION_ENTRY_LIMIT - 1), I32_AND,
    ...store32(ORDER_AT),
  ]),
  END,
];

/** group: parameters, then locals, by index. The doubles come last. */
const G = { base: 0, count: 1, limit: 2, gap: 3, first: 4, last: 5, spanCount: 6, next: 7, start: 8, end: 9, nextStart: 10, nextEnd: 11 };

/**
 * group(base, count, limit, gap): gathers the copies, in `order`, into spans of at most `limit` bytes whose copies
 * lie at most `gap` bytes apart, and returns the number of spans. Span i starts at spanPosition[i], covers
 * spanLength[i] bytes, with the copies order[spanFirst[i]] to order[spanFirst[i + 1] - 1] in it.
 */
const GROUP_BODY = [
  BLOCK, EMPTY_BLOCK,
  LOOP, EMPTY_BLOCK,
  ...get(G.first), ...get(G.count), I32_GE_U, BR_IF, 1,
  ...entryAddress(G.base, G.first, 4), ...load32(ORDER_AT), ...set(G.next),
  ...entryAddress(G.base, G.next, 8), ...loadF64(COPY_SOURCE_AT), ...tee(G.start),
  ...entryAddress(G.base, G.next, 4), ...load32(COPY_LENGTH_AT), F64_CONVERT_I32_U, F64_ADD, ...set(G.end),
  ...get(G.first), ...constant(1), I32_ADD, ...set(G.last),

  BLOCK, EMPTY_BLOCK,
  LOOP, EMPTY_BLOCK,
  ...get(G.last), ...get(G.count), I32_GE_U, BR_IF, 1,
  ...entryAddress(G.base, G.last, 4), ...load32(ORDER_AT), ...set(G.next),
  ...entryAddress(G.base, G.next, 8), ...loadF64(COPY_SOURCE_AT), ...tee(G.nextStart),
  ...entryAddress(G.base, G.next, 4), ...load32(COPY_LENGTH_AT), F64_CONVERT_I32_U, F64_ADD, ...get(G.end), F64_MAX, ...set(G.nextEnd),
  ...get(G.nextStart), ...get(G.end), F64_SUB, ...get(G.gap), F64_CONVERT_I32_U, F64_GT, BR_IF, 1,
  ...get(G.nextEnd), ...get(G.start), F64_SUB, ...get(G.limit), F64_CONVERT_I32_U, F64_GT, BR_IF, 1,
  ...get(G.nextEnd), ...set(G.end),
  ...get(G.last), ...constant(1), I32_ADD, ...set(G.last),
  BR, 0,
  END,
  END,

  ...entryAddress(G.base, G.spanCount, 8), ...get(G.start), ...storeF64(SPAN_POSITION_AT),
  ...entryAddress(G.base, G.spanCount, 4), ...get(G.end), ...get(G.start), F64_SUB, I32_TRUNC_F64_S, ...store32(SPAN_LENGTH_AT),
  ...entryAddress(G.base, G.spanCount, 4), ...get(G.first), ...store32(SPAN_FIRST_AT),
  ...get(G.spanCount), ...constant(1), I32_ADD, ...set(G.spanCount),
  ...get(G.last), ...set(G.first),
  BR, 0,
  END,
  END,
  ...entryAddress(G.base, G.spanCount, 4), ...get(G.count), ...store32(SPAN_FIRST_AT),
  ...get(G.spanCount),
  END,
];

/**
 * Builds the whole module: one imported memory, seven functions and two mutable globals. All but varint and the
 * NEXT global are exported.
 */
function moduleBytes(): Uint8Array {
  const name = (text: string): number[] => [text.length, ...Buffer.from(text, 'latin1')];
  const section = (id: number, contents: number[]): number[] => [id, ...unsignedLeb(contents.length), ...contents];
  const body = (locals: number[], code: number[]): number[] => [...unsignedLeb(locals.length + code.length), ...locals, ...code];
  const FUNCTION_TYPE = 0x60;
  const FUNCTION_EXPORT = 0x00;
  const GLOBAL_EXPORT = 0x03;
  const MUTABLE = 0x01;

  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    // Types: add and group (i32 x4 -> i32), varint and prepare (i32 x2 -> i32), controls (i32 -> none),
    // scatter (i32 x3, f64 -> none), orderByKeys (i32 x2 -> none).
    ...section(1, [
      5,
      FUNCTION_TYPE, 4, I32, I32, I32, I32, 1, I32,
      FUNCTION_TYPE, 2, I32, I32, 1, I32,
      FUNCTION_TYPE, 1, I32, 0,
      FUNCTION_TYPE, 4, I32, I32, I32, F64, 0,
      FUNCTION_TYPE, 2, I32, I32, 0,
    ]),
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, 0x00, 1]),
    ...section(3, [7, 0, 1, 2, 3, 1, 4, 0]),
    ...section(6, [2, I32, MUTABLE, ...constant(0), END, I32, MUTABLE, ...constant(0), END]),
    ...section(7, [
      7,
      ...name('add'), FUNCTION_EXPORT, 0,
      ...name('position'), GLOBAL_EXPORT, POSITION_GLOBAL,
      ...name('controls'), FUNCTION_EXPORT, 2,
      ...name('scatter'), FUNCTION_EXPORT, 3,
      ...name('prepare'), FUNCTION_EXPORT, 4,
      ...name('orderByKeys'), FUNCTION_EXPORT, 5,
      ...name('group'), FUNCTION_EXPORT, 6,
    ]),
    ...section(10, [
      7,
      ...body([1, ADD_LOCALS, I32], ADD_BODY),
      ...body([1, 2, I32], VARINT_BODY),
      ...body([2, C_I32_LOCALS, I32, C_F64_LOCALS, F64], CONTROLS_BODY),
      ...body([1, 2, I32], SCATTER_BODY),
      ...body([2, 2, I32, 2, F64], PREPARE_BODY),
      ...body([1, 1, I32], ORDER_BY_KEYS_BODY),
      ...body([2, 4, I32, 4, F64], GROUP_BODY),
    ]),
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
    // `node --jitless` has no WebAssembly global, so the decoder then runs its JavaScript code alone.
    compiled = typeof WebAssembly === 'object' ? new WebAssembly.Module(moduleBytes()) : undefined;
  }
  return compiled;
}

/** The kernel bound to a memory of its own, which the decoder uses as its workspace. */
export interface SectionKernel {
  /** The kernel's memory as a Buffer; offsets passed to the functions index it. */
  readonly workspace: Buffer;
  /**
   * Adds the difference tokens at [at, end) of the workspace to the copy of `length` bytes at `output`. Returns
   * the offset after the copy's tokens, or, when it stopped at a token it leaves to the caller, -1 minus that
   * token's offset, with the copy's position so far in `position()`.
   */
  add(at: number, end: number, output: number, length: number): number;
  position(): number;
  /** Runs control entries from the state in the copy tables at `tables` (see TABLE_STATE). */
  controls(tables: number): void;
  /** Moves copies order[first] to order[last - 1] of the tables at `tables` from source position + `shift`. */
  scatter(first: number, last: number, tables: number, shift: number): void;
  /** Sets the copy order to 0, 1, 2 ... and the sort keys, and returns 1 when the copies are in source order. */
  prepare(tables: number, count: number): number;
  /** Sets the copy order from the sorted keys. */
  orderByKeys(tables: number, count: number): void;
  /** Gathers the copies into spans of at most `limit` bytes and gaps of at most `gap`, and returns the span count. */
  group(tables: number, count: number, limit: number, gap: number): number;
}

/**
 * Creates a kernel with a workspace of `size` bytes, or returns undefined where WebAssembly is missing or its
 * memory cannot be reserved (V8 reserves address space for each memory, so a limit on it can refuse one).
 */
export function createSectionKernel(size: number): SectionKernel | undefined {
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
    controls: (tables: number) => void;
    scatter: (first: number, last: number, tables: number, shift: number) => void;
    prepare: (tables: number, count: number) => number;
    orderByKeys: (tables: number, count: number) => void;
    group: (tables: number, count: number, limit: number, gap: number) => number;
  };

  return {
    // The memory never grows, so this view stays attached.
    workspace: Buffer.from(memory.buffer, 0, size),
    add: exports.add,
    position: () => exports.position.value as number,
    controls: exports.controls,
    scatter: exports.scatter,
    prepare: exports.prepare,
    orderByKeys: exports.orderByKeys,
    group: exports.group,
  };
}
