import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SimulatorRecords, SimulatorState } from './state.js';

/** How often the state is written when it may have changed. */
const SAVE_INTERVAL_MS = 500;

/**
 * Keeps the simulator's state in a JSON file, as `npm start` keeps Temporal's and the credential store's in
 * `.data/`: a service restarted while a downgrade waits finds the same accounts, authorizations and codes. Loaded
 * at start, written when a request or a callback may have changed it (`SimulatorState.changes`, looked at every
 * SAVE_INTERVAL_MS) and on close; written to a temporary file first and renamed, so a crash leaves the last whole
 * file. Faults, the request log and rate-limit windows are not kept.
 */
export function keepStateInFile(state: SimulatorState, file: string): { close(): void } {
  if (existsSync(file)) {
    let snapshot: SimulatorRecords;
    try {
      snapshot = JSON.parse(readFileSync(file, 'utf8')) as SimulatorRecords;
    } catch (error) {
      throw new Error(
        `the simulator cannot read its state file ${file} (delete it to start empty): ${error}`,
      );
    }
    if (snapshot.version !== 1) throw new Error(`${file} was written by another version of the simulator`);
    state.importRecords(snapshot);
  }
  mkdirSync(dirname(file), { recursive: true });
  let saved = state.changes;
  const save = () => {
    const changes = state.changes;
    if (changes === saved) return;
    writeFileSync(`${file}.tmp`, JSON.stringify(state.exportRecords()), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    saved = changes;
  };
  const timer = setInterval(save, SAVE_INTERVAL_MS);
  timer.unref();
  return {
    close() {
      clearInterval(timer);
      save();
    },
  };
}
