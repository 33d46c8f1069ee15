/** The one-command demo of the whole product on one machine. */
export { runDemo, type DemoOptions } from './run.js';
export { makeDemoImages } from './images.js';
