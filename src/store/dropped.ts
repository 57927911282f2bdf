/** What a capture of users left out: counted by kind, with the first few of each named for the preview. */
export interface Dropped {
  duplicates: number;
  malformed: number;
  examples: { duplicates: string[]; malformed: string[] };
}

const MAX_EXAMPLES = 20;

export function droppedTally(): {
  dropped: Dropped;
  drop(kind: 'duplicates' | 'malformed', value: string): void;
} {
  const dropped: Dropped = { duplicates: 0, malformed: 0, examples: { duplicates: [], malformed: [] } };
  return {
    dropped,
    drop(kind, value) {
      dropped[kind] += 1;
      if (dropped.examples[kind].length < MAX_EXAMPLES) dropped.examples[kind].push(value);
    },
  };
}
