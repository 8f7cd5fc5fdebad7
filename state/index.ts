/** State stores: what a job remembers between runs. */
export {
  STATE_VERSION,
  emptyState,
  openStateStore,
  parseState,
  stateLocation,
  writeFileAtomic,
  type JobState,
  type StateIds,
  type StateStore,
} from './store.js';
