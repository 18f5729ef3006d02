/** SysfsView implementations and the helpers commands use to pick one. */
export { RootView, normalizeViewPath } from "./root-view.js";
export { SnapshotView } from "./snapshot-view.js";
export { RecordingView } from "./recording-view.js";
export {
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSION,
  loadSnapshotFile,
  parseSnapshot,
  type SnapshotEntry,
  type SnapshotFile,
  type SnapshotHost,
} from "./snapshot-format.js";
export {
  VIEW_OPTIONS,
  VIEW_OPTIONS_HELP,
  openView,
  openWritableView,
  requireSysfs,
  viewFromArgs,
  viewOptionsFrom,
  type ViewOptions,
} from "./open.js";
