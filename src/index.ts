/**
 * compact-llm as a library: `import { inspect, prune, evaluate, exportGguf } from 'compact-llm'`.
 * Every function does what the `compact` command of the same name does, returns the report
 * `--json` prints, and takes the CLI's defaults for every option left out. See docs/library.md.
 */
export { calibrateShard, evaluate, exportGguf, generate, inspect, prune, VERSION } from './api.js';
export type { EvaluateOptions, EvaluateReport, ExportSettings, GenerateOptions, InspectReport, PruneSettings } from './api.js';
export { DEFAULT_CALIBRATION, EVAL_DEFAULTS, EXPORT_DEFAULTS, PRUNE_DEFAULTS, withPruneDefaults } from './defaults.js';
export type { TextMetrics } from './eval/text-metrics.js';
export type { GroupReport, TaskReport } from './eval/zero-shot.js';
export type { ExportReport } from './gguf/export.js';
export type { AutoCandidate, PruneReport, ShardReport } from './prune/prune.js';
export { CompactError } from './util/errors.js';
