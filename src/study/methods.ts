/**
 * The methods a study compares, as overrides of `compact prune`'s defaults (src/defaults.ts): every
 * baseline runs through the same pipeline as COMPACT itself, so differences come from the method
 * alone. The paper's methods switch off what goes past the paper (split search, compensation).
 */
import type { PruneSettings } from '../defaults.js';

export interface StudyMethod {
  name: string;
  description: string;
  options: PruneSettings;
  /**
   * How the plots draw it: a colour, a Chart.js point style (all ten styles; eleven methods, so
   * one repeats in another colour and dash; the bare line marks for the baselines farthest from
   * the rest), a marker radius and a line dash, so lines that coincide (ffn-only under
   * compact-auto when the search picks no vocabulary) stay visible: different markers and a
   * dashed line over a solid one.
   */
  style: {
    color: string;
    point: 'circle' | 'rect' | 'triangle' | 'rectRot' | 'star' | 'crossRot' | 'cross' | 'rectRounded' | 'line' | 'dash';
    radius: number;
    dash: number[];
  };
  /** Why the share actually removed can differ from the target (stated beside the plots). */
  granularity?: string;
}

/** The paper's pipeline: the fixed split, the rank vocabulary, down_proj sliced without refitting. */
const PAPER = { method: 'compact', auto: false, vocabMode: 'rank', compensate: false } as const satisfies PruneSettings;

export const STUDY_METHODS: StudyMethod[] = [
  {
    name: 'compact',
    description: 'COMPACT: rare vocabulary + FFN channels by common act² (default vocabulary share)',
    options: PAPER,
    style: { color: '#1b9e77', point: 'circle', radius: 4, dash: [] },
  },
  {
    name: 'compact-auto',
    description: 'COMPACT with the vocabulary share searched on held-out calibration text',
    options: { ...PAPER, auto: true },
    style: { color: '#d95f02', point: 'rect', radius: 5, dash: [] },
  },
  {
    name: 'compact-comp',
    description: "COMPACT (the paper's split and channels) with least-squares compensation of down_proj",
    options: { ...PAPER, compensate: true, selection: 'act2' },
    style: { color: '#e6ab02', point: 'rectRot', radius: 5, dash: [3, 3] },
  },
  {
    name: 'compact-greedy',
    description: "COMPACT (the paper's split) compensated, channels removed greedily by OBS cost (what compensation does by default)",
    options: { ...PAPER, compensate: true, selection: 'greedy' },
    style: { color: '#56b4e9', point: 'circle', radius: 6, dash: [1, 2] },
  },
  {
    name: 'default',
    description: 'compact prune --ratio r as it runs by default: split and vocabulary mode searched, down_proj compensated',
    options: {},
    style: { color: '#000000', point: 'star', radius: 7, dash: [] },
  },
  {
    name: 'plain-act2',
    description: 'same split as compact, channels by plain act² (every token counts)',
    options: { ...PAPER, weighting: 'none' },
    style: { color: '#7570b3', point: 'triangle', radius: 6, dash: [6, 3] },
  },
  {
    name: 'magnitude',
    description: 'same split as compact, channels by weight magnitude',
    options: { ...PAPER, criterion: 'magnitude' },
    style: { color: '#e7298a', point: 'line', radius: 8, dash: [] },
  },
  {
    name: 'random',
    description: 'same split as compact, random channels',
    options: { ...PAPER, criterion: 'random' },
    style: { color: '#66a61e', point: 'dash', radius: 8, dash: [2, 2] },
  },
  {
    name: 'ffn-only',
    description: 'FFN channels only (common act² = plain act² when no token is pruned)',
    options: { ...PAPER, method: 'ffn-only' },
    style: { color: '#0072b2', point: 'crossRot', radius: 9, dash: [8, 4] },
  },
  {
    name: 'vocab-only',
    description: 'rare vocabulary only',
    options: { ...PAPER, method: 'vocab-only' },
    style: { color: '#a6761d', point: 'cross', radius: 8, dash: [4, 4] },
  },
  {
    name: 'shortgpt',
    description: 'ShortGPT depth pruning: drop the layers of lowest Block Influence',
    options: { ...PAPER, method: 'shortgpt' },
    style: { color: '#666666', point: 'rectRounded', radius: 5, dash: [10, 3, 2, 3] },
    granularity:
      "removes whole layers (the number nearest the target, at least one), so the share removed is a multiple of one layer's parameters",
  },
];

export const STUDY_METHOD_NAMES = STUDY_METHODS.map((m) => m.name);
