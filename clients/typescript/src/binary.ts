/**
 * The V2 binary tensor data extension (KServe / Triton), as isvc's server reads and writes it
 * (pipelines/protocol/binary.py): a JSON header whose byte length is the
 * `Inference-Header-Content-Length` header, then each binary tensor's bytes in order.
 * An input with `parameters.binary_data_size: S` has no `data` and takes the next S bytes; an
 * output the same way in a response. Fixed-size types are little-endian, row-major; a BYTES
 * element is a 4-byte little-endian length followed by its bytes.
 */

import type { Datatype, InferInput, InferResponse, TypedTensorData } from "./types.js";

/** The header (case-insensitive) giving the byte length of the JSON part. */
export const HEADER = "Inference-Header-Content-Length";

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

type TypedCtor = { new (buffer: ArrayBuffer): TypedTensorData; readonly BYTES_PER_ELEMENT: number };

/** The typed array each fixed-size datatype decodes to. */
const ARRAY_OF: Record<Exclude<Datatype, "BYTES">, TypedCtor> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

/** Whether `data` is one of the typed arrays a binary tensor is sent from. */
export function isTypedTensor(data: unknown): data is TypedTensorData {
  return (
    ArrayBuffer.isView(data) &&
    !(data instanceof DataView) &&
    !(data instanceof Uint8ClampedArray) &&
    Object.values(ARRAY_OF).some((ctor) => data instanceof ctor)
  );
}

/** The datatypes `data`'s array type can carry; the first is its default. */
export function datatypesOf(data: TypedTensorData): Datatype[] {
  if (data instanceof Uint8Array) return ["UINT8", "BOOL"];
  if (data instanceof Uint16Array) return ["UINT16", "FP16"];
  const found = (Object.entries(ARRAY_OF) as [Datatype, TypedCtor][]).find(([, ctor]) => data instanceof ctor);
  if (!found) throw new TypeError(`${Object.prototype.toString.call(data)} is not a tensor array`);
  return [found[0]];
}

/** The little-endian bytes of `data` (a view of its memory on little-endian machines). */
export function tensorBytes(data: TypedTensorData): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1 ? view : swapped(view, data.BYTES_PER_ELEMENT);
}

function swapped(bytes: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) {
    for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j]!;
  }
  return out;
}

/** BYTES elements as the extension sends them: each one's 4-byte LE length, then its bytes. */
export function encodeBytesTensor(items: ReadonlyArray<string | Uint8Array>): Uint8Array {
  const enc = new TextEncoder();
  const parts = items.map((s) => (typeof s === "string" ? enc.encode(s) : s));
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let pos = 0;
  for (const p of parts) {
    view.setUint32(pos, p.length, true);
    out.set(p, pos + 4);
    pos += 4 + p.length;
  }
  return out;
}

/**
 * One binary tensor's bytes as a typed array (a copy, so always aligned), or for BYTES the
 * elements as UTF-8 strings (as JSON would have given them).
 */
export function decodeTensor(bytes: Uint8Array, datatype: Datatype, where = "tensor"): TypedTensorData | string[] {
  if (datatype === "BYTES") {
    const dec = new TextDecoder();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const items: string[] = [];
    let pos = 0;
    while (pos < bytes.length) {
      if (pos + 4 > bytes.length)
        throw new RangeError(`${where}: BYTES element ${items.length} has a truncated length`);
      const n = view.getUint32(pos, true);
      if (pos + 4 + n > bytes.length) throw new RangeError(`${where}: BYTES element ${items.length} runs past the end`);
      items.push(dec.decode(bytes.subarray(pos + 4, pos + 4 + n)));
      pos += 4 + n;
    }
    return items;
  }
  const ctor = ARRAY_OF[datatype];
  if (!ctor) throw new TypeError(`${where}: unknown datatype ${JSON.stringify(datatype)}`);
  if (bytes.length % ctor.BYTES_PER_ELEMENT) {
    throw new RangeError(`${where}: ${bytes.length} bytes is not a whole number of ${datatype} values`);
  }
  const copy = !LITTLE_ENDIAN && ctor.BYTES_PER_ELEMENT > 1 ? swapped(bytes, ctor.BYTES_PER_ELEMENT) : bytes.slice();
  return new ctor(copy.buffer as ArrayBuffer);
}

/** A V2 request body: plain JSON, or (any input a typed array) the extension's bytes. */
export interface EncodedRequest {
  body: string | Uint8Array;
  headers: Record<string, string>;
}

/**
 * The wire form of a V2 infer request. Inputs whose `data` is a typed array go as raw bytes
 * with `parameters.binary_data_size`; the others stay JSON.
 */
export function encodeInferRequest(
  inputs: ReadonlyArray<InferInput>,
  rest: Record<string, unknown> = {},
): EncodedRequest {
  const blobs: Uint8Array[] = [];
  const wire = inputs.map((input, i) => {
    const { data, ...meta } = input;
    if (!isTypedTensor(data)) {
      if (!input.datatype) throw new TypeError(`inputs[${i}] (${input.name}): datatype is required for JSON data`);
      return input;
    }
    const allowed = datatypesOf(data);
    const datatype = input.datatype ?? allowed[0]!;
    if (!allowed.includes(datatype)) {
      throw new TypeError(
        `inputs[${i}] (${input.name}): a ${data.constructor.name} carries ${allowed.join(" or ")}, not ${datatype}`,
      );
    }
    const bytes = tensorBytes(data);
    blobs.push(bytes);
    return { ...meta, datatype, parameters: { ...input.parameters, binary_data_size: bytes.length } };
  });
  const json = JSON.stringify({ ...rest, inputs: wire });
  if (blobs.length === 0) return { body: json, headers: { "Content-Type": "application/json" } };
  const head = new TextEncoder().encode(json);
  const body = new Uint8Array(head.length + blobs.reduce((n, b) => n + b.length, 0));
  body.set(head, 0);
  let pos = head.length;
  for (const b of blobs) {
    body.set(b, pos);
    pos += b.length;
  }
  return {
    body,
    headers: { "Content-Type": "application/octet-stream", [HEADER]: String(head.length) },
  };
}

/**
 * A V2 infer response whose first `jsonLength` bytes are JSON: each output with
 * `parameters.binary_data_size` gets its `data` from the bytes after it, in output order.
 */
export function decodeInferResponse(raw: Uint8Array, jsonLength: number): InferResponse {
  if (!(jsonLength > 0 && jsonLength <= raw.length)) {
    throw new RangeError(`${HEADER}: ${jsonLength} is outside the body's ${raw.length} bytes`);
  }
  const body = JSON.parse(new TextDecoder().decode(raw.subarray(0, jsonLength))) as InferResponse;
  let pos = jsonLength;
  body.outputs.forEach((out, i) => {
    const size = out.parameters?.["binary_data_size"];
    if (size === undefined) return;
    if (typeof size !== "number" || pos + size > raw.length) {
      throw new RangeError(`outputs[${i}] (${out.name}): binary_data_size ${String(size)} overruns the body`);
    }
    out.data = decodeTensor(raw.subarray(pos, pos + size), out.datatype, `outputs[${i}] (${out.name})`);
    pos += size;
  });
  return body;
}
