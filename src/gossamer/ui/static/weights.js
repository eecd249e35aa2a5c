// Pure helpers for traffic shifting: a rule's backend weights, their shares, the diff.

export const MAX_WEIGHT = 1_000_000; // the model's bound on backendRefs[].weight

export function backendLabel(backend) {
  const labels = Object.entries(backend.labels || {})
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const ns = backend.namespace ? `${backend.namespace}/` : "";
  return labels ? `${ns}${backend.name} {${labels}}` : `${ns}${backend.name}`;
}

/** Weights of one rule, missing weights defaulting to 1 as the model does. */
export function ruleWeights(route, ruleIndex) {
  const rule = ((route.spec && route.spec.rules) || [])[ruleIndex];
  return rule ? (rule.backendRefs || []).map((b) => (b.weight ?? 1)) : [];
}

/** Percent shares (one decimal) of each weight; all zeros give all zeros. */
export function shares(weights) {
  const total = weights.reduce((sum, w) => sum + w, 0);
  return weights.map((w) => (total > 0 ? Math.round((1000 * w) / total) / 10 : 0));
}

/** Why these weights cannot be saved, or null when they can. */
export function weightsProblem(weights) {
  for (const [i, w] of weights.entries()) {
    if (!Number.isInteger(w) || w < 0 || w > MAX_WEIGHT) {
      return `backend ${i + 1}: weight must be a whole number from 0 to ${MAX_WEIGHT}`;
    }
  }
  if (weights.length && weights.every((w) => w === 0)) return "at least one weight must be positive";
  return null;
}

/** The backends whose weight changes: [{index, label, from, to, fromShare, toShare}]. */
export function weightsDiff(route, ruleIndex, newWeights) {
  const rule = route.spec.rules[ruleIndex];
  const before = ruleWeights(route, ruleIndex);
  const beforeShares = shares(before);
  const afterShares = shares(newWeights);
  return rule.backendRefs
    .map((b, index) => ({
      index,
      label: backendLabel(b),
      from: before[index],
      to: newWeights[index],
      fromShare: beforeShares[index],
      toShare: afterShares[index],
    }))
    .filter((d) => d.from !== d.to);
}

/** A copy of the route with the rule's weights replaced, keeping resourceVersion for the PUT. */
export function withWeights(route, ruleIndex, newWeights) {
  const copy = structuredClone(route);
  delete copy.status; // owned by the system
  copy.spec.rules[ruleIndex].backendRefs.forEach((b, i) => {
    b.weight = newWeights[i];
  });
  return copy;
}
