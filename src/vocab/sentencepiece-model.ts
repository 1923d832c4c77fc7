/**
 * tokenizer.model: a SentencePiece `ModelProto` (protobuf), read and rewritten for a pruned vocabulary.
 * Llama 2 / Mistral / Gemma repositories ship it beside tokenizer.json, and llama.cpp's converter and
 * slow tokenizers read it, so after pruning it must list the kept pieces at their new ids.
 *
 * Only the fields that pruning touches are decoded; everything else is kept as the bytes it came in:
 *   ModelProto     pieces = 1 (repeated SentencePiece), trainer_spec = 2, normalizer_spec = 3,
 *                  self_test_data = 4, denormalizer_spec = 5
 *   SentencePiece  piece = 1 (string), score = 2 (float), type = 3 (enum, default NORMAL = 1)
 *   TrainerSpec    unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43 (int32; defaults 0, 1, 2, −1)
 *   SelfTestData   samples = 1
 * A kept piece is copied byte for byte (so its score, type and any extension stay exactly as they
 * were), and a pruned model is the original minus the dropped pieces' records. Pure data in, pure
 * data out.
 */
import { CompactError, check } from '../util/errors.js';
import type { Vocabulary } from './vocabulary.js';

export const PIECE_TYPES = { 1: 'NORMAL', 2: 'UNKNOWN', 3: 'CONTROL', 4: 'USER_DEFINED', 5: 'UNUSED', 6: 'BYTE' } as const;
export type PieceType = (typeof PIECE_TYPES)[keyof typeof PIECE_TYPES];

export interface SentencePiece {
  piece: string;
  score: number;
  type: PieceType;
}

/** One field of a protobuf message: its number, wire type and where its bytes lie. */
interface FieldRecord {
  field: number;
  wire: number;
  /** The whole record (tag included): [start, end). */
  start: number;
  end: number;
  /** Varint value (low 32 bits, as an unsigned number) for wire type 0. */
  varint32: number;
  /** Payload of a length-delimited field: [payloadStart, end). */
  payloadStart: number;
}

export interface SentencePieceModel {
  /** Pieces in id order. */
  readonly pieces: readonly SentencePiece[];
  readonly bytes: Uint8Array;
  /** Top-level records in file order; records[pieceRecord[i]] is piece i. */
  readonly records: readonly FieldRecord[];
  readonly pieceRecord: readonly number[];
}

const MODEL = { pieces: 1, trainerSpec: 2, normalizerSpec: 3, selfTestData: 4, denormalizerSpec: 5 };
const PIECE = { piece: 1, score: 2, type: 3 };
/** TrainerSpec's special-token id fields and their proto2 defaults (used when the field is absent). */
const TRAINER_ID_FIELDS: ReadonlyArray<[field: number, name: string, fallback: number]> = [
  [40, 'unk_id', 0],
  [41, 'bos_id', 1],
  [42, 'eos_id', 2],
  [43, 'pad_id', -1],
];

const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 };

/** Parses a tokenizer.model; anything that is not a SentencePiece ModelProto is a CompactError naming `file`. */
export function readSentencePieceModel(bytes: Uint8Array, file: string): SentencePieceModel {
  const fail = (why: string): never => {
    throw new CompactError(`${file}: not a SentencePiece model (${why})`);
  };
  const records = parseMessage(bytes, 0, bytes.length, fail);
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // a piece may start with U+FEFF
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pieces: SentencePiece[] = [];
  const pieceRecord: number[] = [];
  records.forEach((r, index) => {
    if (r.field >= MODEL.pieces && r.field <= MODEL.denormalizerSpec && r.wire !== WIRE.bytes)
      fail(`field ${r.field} has wire type ${r.wire}`);
    if (
      r.field === MODEL.trainerSpec ||
      r.field === MODEL.normalizerSpec ||
      r.field === MODEL.selfTestData ||
      r.field === MODEL.denormalizerSpec
    ) {
      parseMessage(bytes, r.payloadStart, r.end, (why) => fail(`field ${r.field}: ${why}`));
    }
    if (r.field !== MODEL.pieces) return;
    const where = `piece ${pieces.length}`;
    let piece: string | undefined;
    let score = 0;
    let type: PieceType = 'NORMAL';
    for (const f of parseMessage(bytes, r.payloadStart, r.end, (why) => fail(`${where}: ${why}`))) {
      if (f.field === PIECE.piece) {
        if (f.wire !== WIRE.bytes) fail(`${where}: piece has wire type ${f.wire}`);
        try {
          piece = utf8.decode(bytes.subarray(f.payloadStart, f.end));
        } catch {
          fail(`${where}: piece is not UTF-8`);
        }
      } else if (f.field === PIECE.score) {
        if (f.wire !== WIRE.fixed32) fail(`${where}: score has wire type ${f.wire}`);
        score = view.getFloat32(f.end - 4, true);
      } else if (f.field === PIECE.type) {
        if (f.wire !== WIRE.varint) fail(`${where}: type has wire type ${f.wire}`);
        const name = PIECE_TYPES[f.varint32 as keyof typeof PIECE_TYPES];
        if (name === undefined) fail(`${where}: unknown piece type ${f.varint32}`);
        type = name;
      }
    }
    if (!piece) fail(`${where} has no piece string`);
    pieces.push({ piece: piece!, score, type });
    pieceRecord.push(index);
  });
  if (pieces.length === 0) fail('no pieces');
  return { pieces, bytes, records, pieceRecord };
}

/**
 * tokenizer.model must describe tokenizer.json's vocabulary: piece i is the token with id i. Ids past
 * the last piece may be added tokens that are not pieces (normal for fine-tuned chat models).
 */
export function checkPiecesMatch(model: SentencePieceModel, vocab: Vocabulary, file: string): void {
  const n = model.pieces.length;
  check(
    n <= vocab.size,
    () =>
      `${file} has ${n} pieces but tokenizer.json only ${vocab.size} ids; the two files describe different vocabularies, so ${file} cannot be rewritten for the pruned ids`,
  );
  model.pieces.forEach(({ piece }, id) => {
    const token = vocab.modelToken[id] ?? vocab.addedToken.get(id);
    check(
      token === piece,
      () =>
        `${file} piece ${id} is ${JSON.stringify(piece)} but tokenizer.json id ${id} is ${token === undefined ? 'unused' : JSON.stringify(token)}; the two files describe different vocabularies, so ${file} cannot be rewritten for the pruned ids`,
    );
  });
}

/**
 * The model with only the pieces whose id `old2new` keeps, in their order (so piece k has new id k),
 * TrainerSpec's unk/bos/eos/pad ids remapped, and SelfTestData removed when a piece was dropped
 * (SentencePiece re-runs those samples on load and refuses the file if one no longer encodes as
 * recorded). Every other byte is the input's. Call checkPiecesMatch first.
 */
export function pruneSentencePieceModel(model: SentencePieceModel, old2new: Int32Array, file: string): Uint8Array {
  const { bytes, records } = model;
  const isPiece = new Set(model.pieceRecord);
  let kept = 0;
  model.pieces.forEach((_, id) => {
    const newId = old2new[id];
    if (newId < 0) return;
    // Dense renumbering in old order keeps pieces first: every id below the last piece is a piece.
    check(newId === kept, () => `${file}: piece ${id} would get id ${newId}, not ${kept}; ids below the last piece must all be pieces`);
    kept++;
  });
  const droppedAny = kept < model.pieces.length;
  const out: Uint8Array[] = [];
  let pieceId = 0;
  records.forEach((r, index) => {
    const raw = bytes.subarray(r.start, r.end);
    if (isPiece.has(index)) {
      if (old2new[pieceId++] >= 0) out.push(raw);
    } else if (r.field === MODEL.trainerSpec) {
      out.push(remapTrainerIds(bytes, r, old2new, model.pieces.length, file) ?? raw);
    } else if (!(r.field === MODEL.selfTestData && droppedAny && hasSamples(bytes, r))) {
      out.push(raw);
    }
  });
  return concat(out);
}

/** A rewritten trainer_spec record, or null when none of its ids changes. */
function remapTrainerIds(bytes: Uint8Array, spec: FieldRecord, old2new: Int32Array, pieceCount: number, file: string): Uint8Array | null {
  const fields = parseMessage(bytes, spec.payloadStart, spec.end, validated);
  const changed = new Map<number, number>();
  for (const [field, name, fallback] of TRAINER_ID_FIELDS) {
    const last = fields.filter((f) => f.field === field && f.wire === WIRE.varint).pop();
    const id = last ? last.varint32 | 0 : fallback; // int32: the low 32 bits, signed
    if (id < 0 || id >= pieceCount) continue;
    check(old2new[id] >= 0, () => `${file} trainer_spec ${name} is ${id}, a piece the pruned vocabulary drops`);
    if (old2new[id] !== id) changed.set(field, old2new[id]);
  }
  if (changed.size === 0) return null;
  const parts: Uint8Array[] = [];
  for (const f of fields) if (!changed.has(f.field)) parts.push(bytes.subarray(f.start, f.end));
  for (const [field, id] of [...changed].sort(([a], [b]) => a - b)) parts.push(concat([varint(field * 8 + WIRE.varint), varint(id)]));
  const payload = concat(parts);
  return concat([varint(MODEL.trainerSpec * 8 + WIRE.bytes), varint(payload.length), payload]);
}

function hasSamples(bytes: Uint8Array, record: FieldRecord): boolean {
  return parseMessage(bytes, record.payloadStart, record.end, validated).some((f) => f.field === 1);
}

/** For messages readSentencePieceModel has already parsed without error. */
const validated = (why: string): never => {
  throw new Error(`bug: a validated message failed to parse (${why})`);
};

/** The fields of the message in bytes[start, end); `fail` is called (and must throw) on malformed input. */
function parseMessage(bytes: Uint8Array, start: number, end: number, fail: (why: string) => never): FieldRecord[] {
  const records: FieldRecord[] = [];
  let at = start;
  const readVarint = (): { value: number; low32: number } => {
    let value = 0;
    let low32 = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= end) fail(`truncated varint at byte ${at}`);
      if (shift >= 70) fail(`varint longer than 10 bytes at byte ${at}`);
      const b = bytes[at++];
      value += (b & 0x7f) * 2 ** shift;
      if (shift < 32) low32 = (low32 | ((b & 0x7f) << shift)) >>> 0;
      if ((b & 0x80) === 0) return { value, low32 };
    }
  };
  while (at < end) {
    const recordStart = at;
    const tag = readVarint().value;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) fail(`field number 0 at byte ${recordStart}`);
    let varint32 = 0;
    let payloadStart = at;
    switch (wire) {
      case WIRE.varint:
        varint32 = readVarint().low32;
        break;
      case WIRE.fixed64:
        at += 8;
        break;
      case WIRE.fixed32:
        at += 4;
        break;
      case WIRE.bytes: {
        const length = readVarint().value;
        payloadStart = at;
        if (length > end - at) fail(`field ${field} at byte ${recordStart} runs past the end`);
        at += length;
        break;
      }
      default:
        // Groups (3, 4) are deprecated and unused by SentencePiece; 6 and 7 do not exist.
        fail(`wire type ${wire} at byte ${recordStart}`);
    }
    if (at > end) fail(`field ${field} at byte ${recordStart} runs past the end`);
    records.push({ field, wire, start: recordStart, end: at, varint32, payloadStart });
  }
  return records;
}

function varint(value: number): Uint8Array {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
