import { fileURLToPath } from 'node:url';

/** True when the service runs from its TypeScript source (tsx), false from the compiled `dist/`. */
export const runningFromSource = new URL(import.meta.url).pathname.endsWith('.ts');

/**
 * The file of one of the service's modules, named relative to `base` (the caller's `import.meta.url`) without its
 * extension: `.ts` from source, `.js` from `dist/`. For the modules Temporal loads by path (the workflows, the
 * sandbox's interceptors, the failure converter).
 */
export function modulePath(relative: string, base: string): string {
  return fileURLToPath(new URL(`${relative}${runningFromSource ? '.ts' : '.js'}`, base));
}
