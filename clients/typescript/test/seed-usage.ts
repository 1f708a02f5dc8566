/**
 * Compile-only (tsc checks it in `npm test`; nothing runs it): code written against the seed's
 * `lib/kserve/client.ts` keeps compiling with only its import changed, e.g. from
 * `import { predictV1, predictV2, getModelMetadata } from "@/lib/kserve/client"`.
 */

import { getModelMetadata, predictV1, predictV2 } from "@isvc/kserve-client";

interface ChurnPrediction {
  churn_probability: number;
  risk_tier: "HIGH" | "MEDIUM" | "LOW";
}

export async function scoreCustomer(features: Record<string, number>): Promise<ChurnPrediction> {
  const { predictions } = await predictV1<ChurnPrediction>("churn-classifier", [features]);
  const first: ChurnPrediction | undefined = predictions[0];
  if (!first) throw new Error("no prediction");
  return first;
}

export async function scoreRows(rows: number[][]): Promise<number[]> {
  const datatype: "FP32" | "FP64" | "INT32" | "INT64" | "BYTES" = "FP64";
  const result = await predictV2("churn-classifier", [
    { name: "features", shape: [rows.length, 5], datatype, data: rows.flat() },
  ]);
  const outputs: Array<{ name: string; shape: number[]; datatype: string; data: unknown[] }> = result.outputs;
  const probs = outputs.find((o) => o.name === "churn_probability");
  return (probs?.data ?? []).map((v) => Number(v));
}

export async function describeModel(): Promise<string[]> {
  const meta = await getModelMetadata("churn-classifier");
  return meta.inputs.map((i: { name: string }) => i.name);
}
