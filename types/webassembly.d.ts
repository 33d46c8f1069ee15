/**
 * The part of the WebAssembly JavaScript API that the delta decoder uses. Node.js 20 provides the global, but
 * TypeScript declares it only in its DOM and web worker libraries, which this project does not load.
 */
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }

  class Memory {
    constructor(descriptor: { initial: number; maximum?: number });
    readonly buffer: ArrayBuffer;
  }

  class Global {
    value: unknown;
  }

  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, Memory | Global | ((...args: never[]) => unknown)>>);
    readonly exports: Record<string, unknown>;
  }
}
