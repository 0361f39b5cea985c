/** Kubernetes label selectors, evaluated as the apiserver does (matchLabels and matchExpressions ANDed). */
import type { V1LabelSelector } from '@kubernetes/client-node';

/**
 * Whether `labels` satisfy `sel`. An empty selector matches everything; an operator the API does not
 * define matches nothing (never everything).
 */
export function matches(sel: V1LabelSelector, labels: Readonly<Record<string, string>> = {}): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In': if (!has || !values.includes(labels[e.key] ?? '')) return false; break;
      case 'NotIn': if (has && values.includes(labels[e.key] ?? '')) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false;
    }
  }
  return true;
}
