/**
 * Small ONNX graphs written in the test itself (a protobuf writer, no dependency): contract
 * shaped models, valid or broken in one named way, so the loader's guards and the registry's
 * fallback can be tested against every fault without committing opaque model files.
 *
 * The graph: input `image` (uint8 [N, S, S, 3]) -> Cast -> ReduceMean -> *0, added to constant
 * outputs, so the input is really read while the answer is known in advance.
 */

class Writer {
  private bytes: number[] = [];

  private varint(n: number): void {
    let v = BigInt(n);
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      this.bytes.push(b);
    } while (v);
  }

  int(field: number, n: number): this {
    this.varint((field << 3) | 0);
    this.varint(n);
    return this;
  }

  raw(field: number, data: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }

  str(field: number, s: string): this {
    return this.raw(field, new TextEncoder().encode(s));
  }

  msg(field: number, w: Writer): this {
    return this.raw(field, w.done());
  }

  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

// TensorProto.DataType
export const DT = { FLOAT: 1, UINT8: 2, INT64: 7, DOUBLE: 11 } as const;

type Dim = number | string;

function valueInfo(name: string, elemType: number, shape?: Dim[]): Writer {
  const tensor = new Writer().int(1, elemType);
  if (shape) {
    const s = new Writer();
    for (const d of shape) s.msg(1, typeof d === 'number' ? new Writer().int(1, d) : new Writer().str(2, d));
    tensor.msg(2, s);
  }
  return new Writer().str(1, name).msg(2, new Writer().msg(1, tensor));
}

function floatTensor(name: string, dims: number[], values: number[]): Writer {
  const t = new Writer();
  for (const d of dims) t.int(1, d);
  t.int(2, DT.FLOAT).str(8, name);
  return t.raw(9, new Uint8Array(Float32Array.from(values).buffer));
}

function node(op: string, inputs: string[], outputs: string[], attrs: Writer[] = []): Writer {
  const n = new Writer();
  for (const i of inputs) n.str(1, i);
  for (const o of outputs) n.str(2, o);
  n.str(3, `${op}_${outputs[0]}`).str(4, op);
  for (const a of attrs) n.msg(5, a);
  return n;
}

const intAttr = (name: string, v: number) => new Writer().str(1, name).int(20, 2).int(3, v);

export type GraphFault =
  | 'none'
  | 'input_name' // the input is called `pixels`
  | 'input_dtype' // the input is float32, not uint8
  | 'input_size' // the input is fixed at a size other than the manifest's
  | 'missing_output' // no `box`
  | 'probs_length' // 100 ages instead of 101
  | 'age_dtype' // `age` is float64
  | 'nan_age'
  | 'nan_probs'
  | 'probs_sum'; // probabilities summing to 2

/** Probabilities of the valid graph: a bump around age 30 (so its age is known). */
export function bump(n = 101): number[] {
  const w = Array.from({ length: n }, (_, i) => Math.exp(-0.5 * ((i - 30) / 5) ** 2));
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / s);
}

export function contractGraph(size: number, fault: GraphFault = 'none'): Uint8Array {
  let probs = bump(fault === 'probs_length' ? 100 : 101);
  if (fault === 'probs_sum') probs = probs.map((p) => 2 * p);
  if (fault === 'nan_probs') probs[7] = NaN;
  const age = fault === 'nan_age' ? NaN : probs.reduce((s, p, i) => s + p * i, 0);
  const inputName = fault === 'input_name' ? 'pixels' : 'image';
  const g = new Writer().str(2, `contract-${fault}`);
  const outputs: [string, number][] = [
    ['age', fault === 'age_dtype' ? DT.DOUBLE : DT.FLOAT],
    ['probs', DT.FLOAT],
    ['global_age', DT.FLOAT],
    ['local_age', DT.FLOAT],
    ['box', DT.FLOAT],
  ];
  const nodes = [
    fault === 'input_dtype' ? node('Identity', [inputName], ['x']) : node('Cast', [inputName], ['x'], [intAttr('to', DT.FLOAT)]),
    node('ReduceMean', ['x'], ['mean'], [intAttr('keepdims', 0)]),
    node('Mul', ['mean', 'zero'], ['nothing']),
    node('Add', ['age_c', 'nothing'], fault === 'age_dtype' ? ['age_f'] : ['age']),
    ...(fault === 'age_dtype' ? [node('Cast', ['age_f'], ['age'], [intAttr('to', DT.DOUBLE)])] : []),
    node('Identity', ['probs_c'], ['probs']),
    node('Identity', ['age_c'], ['global_age']),
    node('Identity', ['age_c'], ['local_age']),
    node('Identity', ['box_c'], ['box']),
  ];
  for (const n of nodes) g.msg(1, n);
  g.msg(5, floatTensor('zero', [], [0]));
  g.msg(5, floatTensor('age_c', [1], [age]));
  g.msg(5, floatTensor('probs_c', [1, probs.length], probs));
  g.msg(5, floatTensor('box_c', [1, 4], [0.25, 0.2, 0.75, 0.8]));
  const S = fault === 'input_size' ? size / 2 : size;
  g.msg(11, valueInfo(inputName, fault === 'input_dtype' ? DT.FLOAT : DT.UINT8, [fault === 'input_size' ? 1 : 'N', S, S, 3]));
  for (const [name, type] of outputs) if (!(fault === 'missing_output' && name === 'box')) g.msg(12, valueInfo(name, type));
  return new Writer()
    .int(1, 8) // ir_version
    .str(2, 'age-edge tests')
    .msg(7, g)
    .msg(8, new Writer().str(1, '').int(2, 17)) // opset 17
    .done();
}
