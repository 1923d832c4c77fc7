/** ShortGPT depth pruning: drop the layers whose output is most like their input. */
import type { Checkpoint } from '../model/checkpoint.js';
import type { RawConfig } from '../model/families.js';
import type { ModelSpec } from '../model/spec.js';
import { layerPrefix } from '../model/tensor-names.js';
import { check } from '../util/errors.js';

/** How many whole layers --ratio removes from a checkpoint of `total` parameters. */
export function layersForRatio(ckpt: Checkpoint, total: number, ratio: number | undefined): number {
  check(ratio != null, '--method shortgpt needs --ratio');
  const perLayer = [...ckpt.tensors.values()]
    .filter((t) => t.name.startsWith(layerPrefix(0)))
    .reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const drop = Math.round((ratio * total) / perLayer);
  const L = ckpt.spec.numLayers;
  check(
    drop >= 1 && drop < L,
    `--ratio ${ratio} means dropping ${drop} of ${L} layers (${perLayer} parameters each); reachable: ${(perLayer / 2 / total).toFixed(3)} ≤ ratio < ${(((L - 0.5) * perLayer) / total).toFixed(3)}`,
  );
  return drop;
}

/** Block Influence per layer = mean over calibration tokens of 1 − cos(x_t, y_t). */
export function blockInfluence(influenceSums: number[], weightTotal: number): number[] {
  return influenceSums.map((s) => s / weightTotal);
}

/** The `drop` layers of lowest influence (ties: the later layer first), ascending. */
export function layersToDrop(influence: number[], drop: number): number[] {
  const order = influence.map((_, l) => l).sort((a, b) => influence[a] - influence[b] || b - a);
  return order.slice(0, drop).sort((a, b) => a - b);
}

/** Old tensor name → new name after dropping layers (null: dropped). */
export function renumberLayerTensor(name: string, dropped: ReadonlySet<number>, numLayers: number): string | null {
  const match = /^model\.layers\.(\d+)\.(.*)$/.exec(name);
  if (!match) return name;
  const layer = Number(match[1]);
  if (dropped.has(layer) || layer >= numLayers) return null;
  let below = 0;
  for (const d of dropped) if (d < layer) below++;
  return layerPrefix(layer - below) + match[2];
}

/** config.json fields that change when layers are dropped; each survivor keeps its attention kind. */
export function layerDropFields(spec: ModelSpec, dropped: ReadonlySet<number>): RawConfig {
  if (dropped.size === 0) return {};
  const kept = spec.layers.filter((_, l) => !dropped.has(l));
  const fields: RawConfig = { num_hidden_layers: kept.length };
  if (spec.raw.layer_types != null || kept.some((l) => l.attention !== kept[0].attention)) {
    fields.layer_types = kept.map((l) => `${l.attention}_attention`);
  }
  return fields;
}
