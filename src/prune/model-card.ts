/** README.md of a pruned checkpoint: what was done, to what, with what, by which command. */
import { basename } from 'node:path';
import { PRECISION_TRAITS } from '../engine/precision.js';
import { ROUNDS_PER_LAYER } from './greedy-removal.js';
import { METHOD_TRAITS } from './methods.js';
import type { OutputOptions, ScoringOptions } from './options.js';
import { CHOICE_RULE, type PruneReport } from './report.js';

export function modelCard(r: PruneReport, o: Pick<ScoringOptions, 'scoresIn'> & Pick<OutputOptions, 'commandLine' | 'version'>): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const p = r.parameters;
  const lines = [
    `# Pruned with compact (${r.method})`,
    '',
    `Source: \`${r.input}\`. This is a standard Hugging Face checkpoint of the same architecture; it loads without custom code.`,
    '',
    '| | before | after |',
    '| --- | ---: | ---: |',
    `| vocabulary (V) | ${n(r.vocab.before)} | ${n(r.vocab.after)} |`,
    `| FFN width (I) | ${n(r.ffn.before)} | ${n(r.ffn.after)} |`,
    `| layers | ${r.layers.before} | ${r.layers.after} |`,
    `| parameters | ${n(p.before.total)} | ${n(p.after.total)} |`,
    `| embedding + LM head | ${n(p.before.parts.embedding + p.before.parts.lmHead)} | ${n(p.after.parts.embedding + p.after.parts.lmHead)} |`,
    `| FFN | ${n(p.before.parts.ffn)} | ${n(p.after.parts.ffn)} |`,
    '',
    `Removed: ${(100 * p.removedRatio).toFixed(2)} % of the parameters.`,
    '',
    '## Method',
    '',
    METHOD_TRAITS[r.method].dropsLayers
      ? `ShortGPT depth pruning: dropped layers ${r.layers.dropped.join(', ')} (lowest Block Influence, mean over calibration tokens of 1 − cos(layer input, layer output)).`
      : [
          r.vocab.after < r.vocab.before
            ? `Vocabulary: kept ${n(r.vocab.after)} tokens by ${r.vocab.mode === 'frequency' ? 'frequency, then (tokens never counted) the dense model’s expected count on that text' : r.vocab.mode} (${n(r.vocab.alwaysKept)} always kept: special and added tokens, byte pieces, base symbols and their derivations); tokenizer files rewritten so every text still encodes.`
            : 'Vocabulary: unchanged.',
          r.ffn.after === r.ffn.before
            ? 'FFN: unchanged.'
            : r.compensation?.selection === 'greedy'
              ? `FFN: kept ${n(r.ffn.after)} channels in every layer, removed greedily in rounds of ⌈I/${ROUNDS_PER_LAYER}⌉ by Optimal Brain Surgeon cost ‖W_j‖² / [(G + λI)⁻¹]_jj of down_proj's input channel j (W and (G + λI)⁻¹ updated for the channels removed before; G as below, weighting ${r.weighting}).`
              : `FFN: kept the ${n(r.ffn.after)} channels of highest ${r.criterion}${r.criterion === 'act2' ? ` score (weighting ${r.weighting}: Σ_t w_t·h_t² over calibration positions, h = input of down_proj${r.weighting === 'binary' ? ', w_t = 1 when the input token is kept' : ''})` : ''} in every layer.`,
          ...(r.compensation
            ? [
                `Compensation (beyond the paper): each layer's down_proj was refitted by least squares on the kept channels, W′ = W_K + W_R·G_RK·(G_KK + λI)⁻¹ with G = Σ_t w_t·h_t·h_tᵀ over the calibration positions and λ = ${r.compensation.damp} · mean diagonal of G_KK; shapes and names are those of plain slicing.`,
              ]
            : []),
        ].join('\n'),
    ...(r.auto
      ? [
          '',
          `Split chosen by search (first row) on ${n(r.auto.heldOutChars)} held-out characters (${n(r.auto.heldOutTokens)} tokens, ${r.auto.heldOutPieces} pieces) of ${r.auto.heldOutText ? `\`${basename(r.auto.heldOutText)}\`` : 'the calibration text'}: ${CHOICE_RULE}.`,
          ...r.auto.warnings.map((w) => `\n**Note:** ${w}.`),
          '',
          '| vocab share | mode | V′ | I′ | removed | held-out bpb | − lowest | ± s.e. | pieces | pass |',
          '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
          ...r.auto.candidates.map(
            (c) =>
              `| ${c.vocabShare.toFixed(3)} | ${c.vocabMode} | ${n(c.vocab)} | ${n(c.ffn)} | ${(100 * c.removedRatio).toFixed(2)} % | ${c.heldOutBitsPerByte.toFixed(4)} | ${c.excess.toFixed(4)} | ${c.standardError.toFixed(4)} | ${c.piecesMeasured}/${r.auto!.heldOutPieces} | ${c.pass} |`,
          ),
          ...(r.auto.candidates.some((c) => c.piecesMeasured < r.auto!.heldOutPieces)
            ? [
                '',
                'A split measured on fewer pieces: its bits per byte are on those pieces, its excess against the lowest on the same pieces.',
              ]
            : []),
        ]
      : []),
    ...(r.gguf
      ? [
          '',
          '## llama.cpp',
          '',
          `\`${r.gguf.file}\`: the same model as GGUF (llama.cpp architecture \`${r.gguf.architecture}\`, ${r.gguf.type}), written by compact's own exporter with the pruned tokenizer; run it with llama.cpp as is (e.g. \`llama-cli -m ${r.gguf.file}\`).`,
        ]
      : []),
    ...(r.leftOut.length
      ? [
          '',
          '## Files of the source left out',
          '',
          'Not copied, because they would no longer match this checkpoint (stale weights, tokenizer files with the old token ids) or are links or directories, which compact never copies:',
          '',
          ...r.leftOut.map((l) => `* \`${l.file}\`: ${l.reason}`),
        ]
      : []),
    '',
    '## Calibration',
    '',
    r.calibration
      ? `${r.calibration.samples} ${r.calibration.samples === 1 ? 'sample' : 'samples'} × ${r.calibration.seqLen} tokens (seed ${r.calibration.seed}), each the start of a random line-aligned block of ${r.calibration.files.join(', ')} (sha256 ${r.calibration.sha256}; ${n(r.calibration.corpusTokens)} tokens encoded while sampling).${r.calibration.precision === 'fp32' ? '' : ` Forward pass in ${r.calibration.precision}: ${PRECISION_TRAITS[r.calibration.precision].summary}.`}`
      : o.scoresIn?.length
        ? `Scores read from ${o.scoresIn.join(', ')}.`
        : 'None (no activation statistics were needed).',
    '',
    '## Reproduce',
    '',
    '```',
    o.commandLine,
    '```',
    '',
    `compact ${o.version}. Old→new token ids and kept channels are in \`compact.json\`.`,
    '',
  ];
  return lines.join('\n');
}
